"""PNG export: 8- or 16-bit grayscale at the film's aspect ratio, with its derivation as text."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from core.errors import R2CError, os_reason
from core.exports.derived import RestoredImage, export_pixels, quantize


def write_gray_png(path: str | Path, pixels: np.ndarray, bits: int = 8, description: str | None = None,
                   extra_text: dict[str, str] | None = None) -> Path:
    """A grayscale PNG of display levels in [0, 1], written atomically (temporary file, rename);
    ``description`` and ``extra_text`` become PNG text chunks."""
    path = Path(path)
    data = quantize(pixels, bits)
    image = Image.fromarray(data)  # uint8 -> mode "L", uint16 -> "I;16"
    info = PngInfo()
    if description:
        info.add_text("Description", description)
    for key, value in (extra_text or {}).items():
        info.add_text(key, value)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(tmp, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise R2CError(path, f"cannot be written ({os_reason(exc)})") from None
    return path


def write_png(path: str | Path, image: RestoredImage, bits: int = 8) -> Path:
    """The restoration as a PNG of the film's aspect ratio (its own size when native)."""
    return write_gray_png(path, export_pixels(image), bits, image.derivation)

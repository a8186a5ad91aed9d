"""How large an image the loader accepts, checked on what a file declares before decoding.

A small file can declare a huge image (a 0.9 MB PNG of 30000x30000, a deflated DICOM that
inflates to gigabytes); decoders allocate what is declared, so the declaration is checked
first. The limit is in pixels (megapixels, default 100: a 10000x10000 film, several times
the largest detector) and can be changed with ``R2C_MAX_MEGAPIXELS``.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ImageLoadError

DEFAULT_MAX_MEGAPIXELS = 100.0
MAX_BYTES_PER_PIXEL = 8  # 3 or 4 samples of 16 bits (RGB, RGBA)
_OVERHEAD_BYTES = 64 << 20  # header, overlays and other attributes of a DICOM file


def max_pixels() -> int:
    """The largest image (rows x columns x frames) the loader decodes."""
    text = os.environ.get("R2C_MAX_MEGAPIXELS", "")
    try:
        megapixels = float(text) if text else DEFAULT_MAX_MEGAPIXELS
    except ValueError:
        megapixels = DEFAULT_MAX_MEGAPIXELS
    if not megapixels > 0:
        megapixels = DEFAULT_MAX_MEGAPIXELS
    return int(megapixels * 1_000_000)


def max_inflated_bytes() -> int:
    """The most bytes a compressed container (deflated DICOM) may expand to."""
    return max_pixels() * MAX_BYTES_PER_PIXEL + _OVERHEAD_BYTES


def check_declared_size(path: str | Path, width: int, height: int, frames: int = 1, what: str = "image") -> None:
    """Refuse a declared size that is empty or above the pixel limit, before anything is decoded."""
    if width <= 0 or height <= 0 or frames <= 0:
        raise ImageLoadError(path, f"{what} declares an empty size ({width}x{height})")
    pixels = width * height * frames
    limit = max_pixels()
    if pixels > limit:
        raise ImageLoadError(
            path,
            f"{what} declares {width}x{height}" + (f"x{frames} frames" if frames > 1 else "")
            + f" ({pixels / 1e6:.0f} megapixels), more than the limit of {limit / 1e6:.0f} megapixels "
            "(set R2C_MAX_MEGAPIXELS to allow larger images)",
        )

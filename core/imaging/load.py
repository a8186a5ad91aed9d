"""Entry points: which files are X-rays, and loading one whatever its format.

The format is decided by content (magic bytes) first and by suffix second, so a JPEG
named ``.png`` or a DICOM named by its UID (``1.2.840....1234``) still loads. Every failure
becomes an :class:`~core.errors.ImageLoadError` naming the file and the reason.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from core.errors import ImageLoadError
from core.imaging.dicom import has_dicom_magic, load_dicom, looks_like_bare_dicom
from core.imaging.quiet import quiet_decoders
from core.imaging.raster import load_raster, sniff_raster, xray_from_array
from core.imaging.xray import XRay

log = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dicom")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SUPPORTED_SUFFIXES = DICOM_SUFFIXES + RASTER_SUFFIXES
_HEAD = 132  # DICOM preamble + "DICM"
_IGNORED_NAMES = {"dicomdir"}  # a DICOM index, not an image


def _suffix_is_absent(path: Path) -> bool:
    """No suffix, or a numeric one (DICOM files are often named by their UID)."""
    suffix = path.suffix
    return suffix == "" or suffix[1:].isdigit()


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(_HEAD)
    except OSError:
        return b""


def is_supported(path: str | Path) -> bool:
    """Whether ``path`` is a file this module loads (by suffix; suffix-less files by content)."""
    path = Path(path)
    if path.name.startswith(".") or path.name.lower() in _IGNORED_NAMES or not path.is_file():
        return False
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    if not _suffix_is_absent(path):
        return False
    head = _read_head(path)
    return has_dicom_magic(head) or looks_like_bare_dicom(head)


def iter_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Supported files in ``folder`` (and below, unless ``recursive=False``), sorted; hidden skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageLoadError(folder, "folder not found")
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        found.extend(p for name in files if is_supported(p := Path(root) / name))
    return sorted(found)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ImageLoadError(path, "file not found")
    if path.is_dir():
        raise ImageLoadError(path, "is a folder, not an image file")
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageLoadError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise ImageLoadError(path, "file is empty")
    return data


def _require_displayable(xray: XRay) -> XRay:
    """Never hand out a NaN (black) picture: an image that does not render is an error."""
    if not np.isfinite(xray.display).all():
        raise ImageLoadError(xray.source, "the image cannot be displayed (its window or pixel values are out of "
                                          "range: the file is corrupt)")
    return xray


def _load(path: Path) -> XRay:
    data = _read_bytes(path)
    kind = sniff_raster(data[:16])
    if kind is not None:
        return load_raster(path, data, kind)
    suffix = path.suffix.lower()
    if (
        has_dicom_magic(data[:_HEAD])
        or suffix in DICOM_SUFFIXES
        or (_suffix_is_absent(path) and looks_like_bare_dicom(data[:_HEAD]))
    ):
        return load_dicom(path, data)
    if suffix in RASTER_SUFFIXES:
        raise ImageLoadError(path, f"not a {suffix[1:].upper()} image (content not recognized)")
    raise ImageLoadError(path, "not a DICOM or image file")


def load_xray(path: str | Path) -> XRay:
    """Load a radiograph (DICOM, PNG, JPEG, TIFF) with its full display chain applied.

    Raises ImageLoadError(path, reason) for anything that cannot be shown; never another error.
    """
    path = Path(path)
    try:
        with quiet_decoders():
            return _require_displayable(_load(path))
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(path, "image is too large to load in memory") from None
    except Exception as exc:  # a decoder or a malformed attribute we did not foresee
        log.debug("unexpected failure loading %s", path, exc_info=True)
        raise ImageLoadError(path, "cannot be read: the file is corrupt or uses a feature this app does not "
                                   "support") from exc


def load_xray_array(array: np.ndarray, source: str | Path = "<memory>") -> XRay:
    """An XRay from pixels in memory: grayscale or RGB(A), uint8/uint16/float (alpha ignored)."""
    return xray_from_array(array, source)

"""PNG, JPEG and TIFF radiographs (exports, paper figures, phone photos of films).

Decoded from bytes (so Unicode paths work everywhere) by OpenCV, with Pillow as fallback
for the odd modes OpenCV refuses. Depth is kept: a 16-bit PNG keeps values up to 65535.
EXIF orientation is applied (a phone photo shows upright, as in any viewer); alpha is
ignored (transparency carries no density); color becomes Rec. 601 luminance.

Default window: 8-bit images use the full 0..255 range, so ``display == gray / 255``
exactly (the file is already display-ready). Deeper images use their data range (lowest
to highest value present): a 12-bit detector image saved in a 16-bit PNG would otherwise
look black under 0..65535, and percentiles would clip what the author chose to keep.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from core.errors import ImageLoadError
from core.imaging import presets
from core.imaging.declared import DeclarationError, jpeg_frame, png_frame
from core.imaging.limits import check_declared_size
from core.imaging.quiet import quiet_decoders
from core.imaging.window import Window
from core.imaging.xray import PatientInfo, XRay

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601, R G B order


def sniff_raster(head: bytes) -> str | None:
    """The format ("PNG", "JPEG" or "TIFF") from the magic bytes, else None."""
    if head.startswith(PNG_MAGIC):
        return "PNG"
    if head.startswith(JPEG_MAGIC):
        return "JPEG"
    if head[:4] in TIFF_MAGICS:
        return "TIFF"
    return None


def _check_complete(path: Path, data: bytes, kind: str) -> None:
    """Refuse a truncated PNG/JPEG: decoders fill the missing part with gray and only warn.

    The end marker is normally at the very end; when it is not (trailers such as a phone's
    embedded motion video), Pillow, which raises on premature ends, decides.
    """
    marker = {"PNG": b"IEND", "JPEG": b"\xff\xd9"}.get(kind)
    if marker is None or marker in data[-4096:]:
        return
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception:
        raise ImageLoadError(path, f"{kind} file is truncated (image data ends early)") from None


def _tiff_page_count(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(getattr(im, "n_frames", 1))
    except Exception:  # let the decoders below report the problem
        return 1


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a TIFF's first page from its directory (Pillow opens lazily), or None."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.size[0]), int(im.size[1])
    except Image.DecompressionBombError:
        return 1 << 20, 1 << 20  # Pillow's own guard fired: far above any limit
    except Exception:  # let the decoders report the problem
        return None


def check_raster_header(path: Path, data: bytes, kind: str) -> None:
    """Refuse a malformed header or a declared size above the limit, before any decoder runs."""
    try:
        if kind == "PNG":
            frame = png_frame(data)
            size = (frame.width, frame.height)
        elif kind == "JPEG":
            frame = jpeg_frame(data)
            size = (frame.width, frame.height)
        else:
            size = _tiff_size(data)
    except DeclarationError as exc:
        raise ImageLoadError(path, str(exc)) from None
    if size is not None:
        check_declared_size(path, size[0], size[1], what=f"{kind} image")


def _decode_cv2(data: bytes) -> np.ndarray | None:
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR  # keeps 16 bit, drops alpha, applies EXIF
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        return None


def _decode_pillow(data: bytes) -> np.ndarray | None:
    """RGB-ordered or single-channel array, or None when Pillow cannot read it either."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return np.asarray(im, dtype=np.uint16)
            if im.mode in ("I", "F", "L", "RGB"):
                return np.asarray(im)
            return np.asarray(im.convert("L" if im.mode in ("1", "LA", "La") else "RGB"))
    except Exception:
        return None


def decode_raster(path: Path, data: bytes, kind: str) -> np.ndarray:
    """Pixels in RGB order (H x W or H x W x 3), depth kept."""
    check_raster_header(path, data, kind)
    _check_complete(path, data, kind)
    if kind == "TIFF" and (pages := _tiff_page_count(data)) > 1:
        raise ImageLoadError(path, f"multi-page TIFF files are not supported ({pages} pages)")
    with quiet_decoders():
        arr = _decode_cv2(data)
        if arr is not None and arr.ndim == 3 and arr.shape[2] >= 3:
            arr = arr[..., 2::-1]  # OpenCV gives BGR
        if arr is None or arr.size == 0:
            arr = _decode_pillow(data)
    if arr is None:
        raise ImageLoadError(path, f"{kind} data cannot be decoded (file truncated or corrupt)")
    if arr.size == 0:
        raise ImageLoadError(path, "image has zero size")
    return arr


def bits_of(arr: np.ndarray) -> int:
    """Nominal bits per sample: 8 or 16 for integer rasters, 32/64 for float ones."""
    if arr.dtype == np.bool_:
        return 1
    return int(arr.dtype.itemsize * 8)


def gray_values(arr: np.ndarray) -> tuple[np.ndarray, str]:
    """Gray levels as float32 and the photometric name of the source (alpha dropped)."""
    if arr.ndim == 2:
        return arr.astype(np.float32), "MONOCHROME2"
    if arr.ndim == 3 and arr.shape[2] in (1, 2):  # gray or gray + alpha
        return arr[..., 0].astype(np.float32), "MONOCHROME2"
    if arr.ndim == 3 and arr.shape[2] in (3, 4):  # RGB or RGBA
        r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
        if np.array_equal(r, g) and np.array_equal(g, b):  # gray stored as color: keep it exact
            return r.astype(np.float32), "MONOCHROME2"
        return (arr[..., :3].astype(np.float64) @ LUMA).astype(np.float32), "RGB"
    raise ValueError(f"cannot make a grayscale image from an array of shape {arr.shape}")


def raster_windows(values: np.ndarray, bits: int, is_float: bool, signed: bool = False) -> list[Window]:
    """Default window first (see module docstring), then the other presets."""
    auto = presets.automatic_window(values)
    data_range = presets.data_range_window(values)
    if is_float:
        if values.size and float(values.min()) >= 0.0 and float(values.max()) <= 1.0:
            return [presets.full_range_window(0.0, 1.0), auto, data_range]
        return [data_range, auto]
    low = -float(1 << (bits - 1)) if signed else 0.0
    full = presets.full_range_window(low, low + float((1 << bits) - 1))
    if bits <= 8:
        return [full, auto, data_range]
    return [data_range, auto, full]


def require_finite(values: np.ndarray, source: str | Path) -> np.ndarray:
    """``values`` unchanged, or an ImageLoadError when any is NaN or infinite (never a black image)."""
    if not np.isfinite(values).all():
        raise ImageLoadError(source, "pixel values are not finite numbers (NaN or infinity): the file is corrupt "
                                     "or its rescale values are out of range")
    return values


def xray_from_array(array: np.ndarray, source: str | Path = "<memory>") -> XRay:
    """An XRay from pixels in RGB order (uint8, uint16, other integers or float)."""
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ImageLoadError(source, f"not a 2-D grayscale or RGB image (shape {arr.shape})")
    is_float = np.issubdtype(arr.dtype, np.floating)
    if not is_float and not np.issubdtype(arr.dtype, np.integer):
        raise ImageLoadError(source, f"unsupported pixel type {arr.dtype}")
    try:
        values, photometric = gray_values(arr)
    except ValueError as exc:
        raise ImageLoadError(source, str(exc)) from None
    require_finite(values, source)
    bits = bits_of(arr)
    return XRay(
        values=values,
        windows=raster_windows(values, bits, is_float, np.issubdtype(arr.dtype, np.signedinteger)),
        invert=False,
        source=Path(str(source)),
        bits_stored=bits,
        photometric=photometric,
        modality=None,
        pixel_spacing=None,
        identifiers=PatientInfo(),
    )


def load_raster(path: Path, data: bytes, kind: str) -> XRay:
    return xray_from_array(decode_raster(path, data, kind), path)

"""DICOM radiographs: read, decode, and the display chain in the standard's order.

Chain (DICOM PS3.4 N.2, step names as in ``pydicom.pixels``):

1. decode the stored pixels (any installed plugin: GDCM, pylibjpeg/OpenJPEG, pyjpegls,
   Pillow, pydicom's own RLE and native readers);
2. ``apply_modality_lut``: Modality LUT Sequence or Rescale Slope/Intercept -> ``values``;
3. VOI: the file's first window (Window Center/Width with its VOI LUT Function LINEAR,
   LINEAR_EXACT or SIGMOID), else its first VOI LUT, else an automatic window (robust
   percentiles, see :mod:`core.imaging.presets`); 8-bit files without any VOI use the
   full 0..255 range, as they are already display-ready;
4. inversion, after VOI.

Inversion rule: ``invert = (MONOCHROME1) XOR (Presentation LUT Shape INVERSE on a
MONOCHROME2 image)``. A MONOCHROME1 file is inverted exactly once whatever its Presentation
LUT Shape says: DX objects are required to state INVERSE for MONOCHROME1 (PS3.3
C.8.11.6.1.2), which describes that same single inversion and is not a second one; real
files (e.g. a DX MONOCHROME1 + INVERSE) only look right this way.

Color images (RGB, YBR_*, PALETTE COLOR: secondary captures) become Rec. 601 luminance.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGExtended12Bit,
    RLELossless,
)

from core.errors import ImageLoadError
from core.imaging import presets
from core.imaging.declared import DeclarationError, Frame, j2k_frame, jpeg_frame
from core.imaging.jpeg12 import decode_jpeg12
from core.imaging.limits import check_declared_size, max_inflated_bytes
from core.imaging.quiet import quiet_decoders
from core.imaging.raster import gray_values, require_finite
from core.imaging.window import VoiLut, Window
from core.imaging.xray import PatientInfo, XRay

log = logging.getLogger(__name__)

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
COLOR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR")

_IDENTIFIERS = {
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "birth_date": "PatientBirthDate",
    "sex": "PatientSex",
    "age": "PatientAge",
    "study_date": "StudyDate",
    "study_time": "StudyTime",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "accession_number": "AccessionNumber",
    "institution": "InstitutionName",
    "referring_physician": "ReferringPhysicianName",
    "station_name": "StationName",
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "sop_uid": "SOPInstanceUID",
}

_MAX_WINDOW = 1e30  # window centers/widths beyond this are corrupt (float32 rendering overflows)
_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010) little / big endian


def has_dicom_magic(head: bytes) -> bool:
    """Part 10 file: 128-byte preamble then ``DICM``."""
    return head[128:132] == b"DICM"


def looks_like_bare_dicom(head: bytes) -> bool:
    """A dataset without preamble/meta (old ACR-NEMA style): starts with a group 0008 tag."""
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    element = int.from_bytes(head[2:4], "little")
    return group in (0x0002, 0x0008) and element < 0x0100


# -- reading -------------------------------------------------------------------------------


def _inflated_size_ok(data: bytes) -> bool | None:
    """For a deflated file, whether its dataset inflates to no more than the limit (None: not deflated).

    pydicom inflates the whole dataset in memory before parsing it; a 1.8 MB file can expand to
    many gigabytes, so the expansion is counted first, in bounded steps that keep nothing.
    """
    if DeflatedExplicitVRLittleEndian.encode() not in data[:4096]:
        return None
    fp = io.BytesIO(data)
    try:
        pydicom.filereader.read_preamble(fp, force=True)
        meta = pydicom.filereader._read_file_meta_info(fp)
    except Exception:  # malformed meta: dcmread will say so
        return None
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return None
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    limit, total, pending = max_inflated_bytes(), 0, data[fp.tell():]
    try:
        while pending:
            total += len(inflater.decompress(pending, 1 << 24))
            if total > limit:
                return False
            pending = inflater.unconsumed_tail
    except zlib.error:
        return None  # corrupt stream: dcmread reports it
    return True


def read_dataset(path: Path, data: bytes) -> Dataset:
    """Parse the bytes as DICOM (preamble and meta optional; implicit VR LE assumed without)."""
    magic = has_dicom_magic(data)
    if _inflated_size_ok(data) is False:
        raise ImageLoadError(path, f"deflated DICOM data expands to more than {max_inflated_bytes() >> 20} MiB "
                                   "(set R2C_MAX_MEGAPIXELS to allow larger images)")
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # pydicom raises many types on garbage
        log.debug("dcmread failed for %s", path, exc_info=True)
        if magic:
            raise ImageLoadError(path, "truncated or corrupt DICOM file") from exc
        raise ImageLoadError(path, "not a DICOM or image file") from exc
    if "PixelData" not in ds:
        # pydicom only warns when a file ends inside a value (e.g. encapsulated pixel data
        # cut short) and returns what it parsed; a Pixel Data tag in the bytes tells.
        if any(tag in data for tag in _PIXEL_DATA_TAGS):
            raise ImageLoadError(path, "truncated or corrupt DICOM file (pixel data cannot be read)")
        if not magic and not any(k in ds for k in ("SOPClassUID", "Rows", "Modality")):
            raise ImageLoadError(path, "not a DICOM or image file")
        raise ImageLoadError(path, "DICOM file contains no image (no pixel data)")
    _ensure_transfer_syntax(ds)
    return ds


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Files without meta need a transfer syntax for decoding: take the one they were read with."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = pydicom.dataset.FileMetaDataset()
    if meta.get("TransferSyntaxUID"):
        return
    implicit, little = ds.original_encoding
    if little is False:
        meta.TransferSyntaxUID = ExplicitVRBigEndian
    elif implicit is False:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian


def _check_image_attributes(path: Path, ds: Dataset) -> str:
    """Reject what the viewer cannot show before spending time decoding; returns photometric."""
    frames = _int(ds.get("NumberOfFrames"), 1)
    if frames > 1:
        raise ImageLoadError(path, f"multi-frame images are not supported ({frames} frames)")
    rows, cols = _int(ds.get("Rows"), 0), _int(ds.get("Columns"), 0)
    if rows <= 0 or cols <= 0:
        raise ImageLoadError(path, f"image has zero size ({cols}x{rows})")
    if "BitsAllocated" not in ds:
        raise ImageLoadError(path, "DICOM image lacks Bits Allocated")
    allocated = _int(ds.get("BitsAllocated"), 0)
    if allocated not in (1, 8, 16, 32):
        raise ImageLoadError(path, f"unsupported Bits Allocated ({ds.get('BitsAllocated')})")
    ds.SamplesPerPixel = _int(ds.get("SamplesPerPixel"), 1)
    if ds.SamplesPerPixel not in (1, 3):
        raise ImageLoadError(path, f"unsupported Samples per Pixel ({ds.SamplesPerPixel}); expected 1 or 3")
    ds.PixelRepresentation = _int(ds.get("PixelRepresentation"), 0)
    if ds.PixelRepresentation not in (0, 1):
        raise ImageLoadError(path, f"invalid Pixel Representation ({ds.PixelRepresentation})")
    if "BitsStored" not in ds:
        ds.BitsStored = ds.BitsAllocated
    stored_bits = _int(ds.get("BitsStored"), 0)
    if not 1 <= stored_bits <= allocated:
        raise ImageLoadError(path, f"Bits Stored ({ds.get('BitsStored')}) does not fit Bits Allocated ({allocated})")
    check_declared_size(path, cols, rows, what="DICOM image")
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if not photometric and ds.SamplesPerPixel == 1:
        photometric = "MONOCHROME2"  # ACR-NEMA files predate the attribute
    if photometric not in MONOCHROME + COLOR:
        raise ImageLoadError(path, f"unsupported photometric interpretation {photometric or '(none)'!r}")
    ds.PhotometricInterpretation = photometric
    return photometric


def _int(value: object, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


# -- decoding ------------------------------------------------------------------------------


def _codec_name(uid: UID) -> str:
    name = uid.name
    if uid.startswith("1.2.840.10008.1.2.4.2") or "2000" in name:
        return "JPEG 2000"
    if "JPEG-LS" in name:
        return "JPEG-LS"
    if "JPEG XL" in name:
        return "JPEG XL"
    if "JPEG" in name:
        return "JPEG"
    if "RLE" in name:
        return "RLE"
    return name or str(uid)


# Plugins that raise on bad input, best first; GDCM throws uncaught C++ exceptions (abort) on some
# inconsistent files, so it decodes only what nothing else can (JPEG lossless, 12-bit JPEG).
_PREFERRED_PLUGINS = ("pylibjpeg", "pyjpegls", "pillow", "pydicom", "gdcm")


def choose_plugin(uid: UID) -> str:
    """The pydicom decoding plugin for a transfer syntax: the first available of ``_PREFERRED_PLUGINS``."""
    available = set(get_decoder(uid).available_plugins)
    return next((name for name in _PREFERRED_PLUGINS if name in available), "")


def _first_fragment(path: Path, ds: Dataset) -> bytes:
    try:
        items = generate_fragments(ds.PixelData)
        next(items)  # the Basic Offset Table always comes first
        return next(items)
    except Exception:  # item tags damaged, or no fragment at all
        raise ImageLoadError(path, "encapsulated pixel data is corrupt (fragment items cannot be read)") from None


def check_codestream(path: Path, ds: Dataset, uid: UID) -> None:
    """The compressed image must declare what the DICOM header says, or no decoder sees it."""
    if not uid.is_compressed or uid == RLELossless:
        return
    codec = _codec_name(uid)
    fragment = _first_fragment(path, ds)
    try:
        if codec == "JPEG 2000":
            frame: Frame = j2k_frame(fragment)
        elif codec in ("JPEG", "JPEG-LS"):
            frame = jpeg_frame(fragment)
        else:
            return
    except DeclarationError as exc:
        raise ImageLoadError(path, str(exc)) from None
    rows, cols, samples = _int(ds.Rows, 0), _int(ds.Columns, 0), _int(ds.SamplesPerPixel, 1)
    allocated = _int(ds.BitsAllocated, 16)
    if codec in ("JPEG", "JPEG-LS") and allocated not in (8, 16):
        # JPEG holds at most 16-bit samples; GDCM aborts the process on other allocations
        raise ImageLoadError(path, f"{codec} pixel data needs Bits Allocated 8 or 16, but the DICOM header says "
                                   f"{allocated} (file corrupt or mislabelled)")
    if (frame.height, frame.width, frame.components) != (rows, cols, samples) or frame.bits > allocated:
        raise ImageLoadError(
            path,
            f"{codec} codestream declares {frame.width}x{frame.height} with {frame.components} component(s) of "
            f"{frame.bits} bits, but the DICOM header says {cols}x{rows} with {samples} sample(s) of at most "
            f"{allocated} bits (file corrupt or mislabelled)",
        )


def decode_pixels(path: Path, ds: Dataset) -> np.ndarray:
    """Stored pixel values (rows x cols, or rows x cols x 3 in RGB) or an ImageLoadError."""
    uid = UID(str(ds.file_meta.TransferSyntaxUID))
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise ImageLoadError(path, f"unsupported transfer syntax {uid.name or uid}") from None
    if not decoder.is_available:
        raise ImageLoadError(path, f"no installed decoder can read {uid.name or uid} pixel data")
    if uid.is_compressed and not ds["PixelData"].is_undefined_length:
        raise ImageLoadError(path, f"{_codec_name(uid)} pixel data is not encapsulated (file corrupt)")
    check_codestream(path, ds, uid)
    jpeg12 = uid == JPEGExtended12Bit and _int(ds.get("BitsStored"), 8) > 8
    if not jpeg12 and uid.is_compressed:
        ds.pixel_array_options(decoding_plugin=choose_plugin(uid))
    try:
        with quiet_decoders():
            arr = decode_jpeg12(ds) if jpeg12 else ds.pixel_array
    except MemoryError:
        raise ImageLoadError(path, "image is too large to decode in memory") from None
    except Exception as exc:  # each plugin raises its own kind of error
        log.debug("decoding %s failed", path, exc_info=True)
        if uid.is_compressed:
            reason = f"{_codec_name(uid)} pixel data cannot be decoded (codestream truncated or corrupt)"
        elif "less than expected" in str(exc):
            reason = "file is truncated (pixel data is shorter than the image size)"
        else:
            reason = "pixel data cannot be decoded (image attributes inconsistent with the data)"
        raise ImageLoadError(path, reason) from exc
    expected = (_int(ds.Rows, 0), _int(ds.Columns, 0))
    if arr.shape[:2] != expected or arr.ndim not in (2, 3):
        raise ImageLoadError(path, f"decoded image has shape {arr.shape}, expected {expected}")
    return arr


# -- display chain -------------------------------------------------------------------------


def padding_mask(stored: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """True where a pixel is real image, False where it is Pixel Padding (None: no padding)."""
    if "PixelPaddingValue" not in ds:
        return None
    bits = _int(ds.get("BitsStored"), 16)
    signed = _int(ds.get("PixelRepresentation"), 0) == 1

    def as_stored(value: object) -> int:
        v = int(value)  # type: ignore[call-overload]
        return v - (1 << 16) if signed and v >= 1 << 15 and bits <= 16 else v

    try:
        first = as_stored(ds.PixelPaddingValue)
        limit = as_stored(ds.PixelPaddingRangeLimit) if "PixelPaddingRangeLimit" in ds else first
    except (TypeError, ValueError):
        return None
    low, high = min(first, limit), max(first, limit)
    padded = (stored >= low) & (stored <= high)
    if not padded.any() or padded.all():
        return None
    return ~padded


def stored_range(ds: Dataset) -> tuple[int, int]:
    """Nominal range of the stored values from Bits Stored and Pixel Representation."""
    bits = _int(ds.get("BitsStored"), 16)
    if _int(ds.get("PixelRepresentation"), 0) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _multi(value: object) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def file_windows(ds: Dataset) -> list[Window]:
    """All Window Center/Width pairs, named by their explanation; invalid ones are skipped."""
    centers, widths = _multi(ds.get("WindowCenter")), _multi(ds.get("WindowWidth"))
    names = [str(n).strip() for n in _multi(ds.get("WindowCenterWidthExplanation"))]
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    windows = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        try:
            c, w = float(center), float(width)
        except (TypeError, ValueError):
            continue
        if not (np.isfinite(c) and np.isfinite(w) and w > 0) or max(abs(c), w) > _MAX_WINDOW:
            continue  # absurd values (beyond float32, where rendering happens) would give a NaN image
        name = names[i] if i < len(names) and names[i] else f"Window {i + 1}"
        windows.append(Window(c, w, name, function))  # type: ignore[arg-type]
    return windows


def _lut_entries(item: Dataset, count: int, little_endian: bool) -> np.ndarray:
    """LUT Data as integers: US/SS lists as they are, OW/OB bytes as 16-bit words (or packed bytes)."""
    element = item["LUTData"]
    value = element.value
    if isinstance(value, (bytes, bytearray)):
        if len(value) == count:  # 8-bit entries packed one per byte
            return np.frombuffer(value, dtype=np.uint8).astype(np.float64)
        words = np.frombuffer(value[: 2 * count], dtype="<u2" if little_endian else ">u2")
        return words.astype(np.float64)
    return np.asarray(_multi(value), dtype=np.float64)


def file_voi_luts(ds: Dataset, values_min: float) -> list[Window]:
    """Each VOI LUT Sequence item as a Window (table scaled to [0, 1] by its bit depth).

    Read here rather than with ``pydicom.pixels.apply_voi``, which indexes through the LUT's
    output type and so wraps around for 8-bit LUTs with more than 256 entries.
    """
    little_endian = ds.original_encoding[1] is not False
    windows = []
    for i, item in enumerate(ds.get("VOILUTSequence") or []):
        try:
            count, first, bits = (int(v) for v in item.LUTDescriptor)
            count = count or 1 << 16
            table = _lut_entries(item, count, little_endian)
            if table.size < count or not 1 <= bits <= 16:
                raise ValueError(f"LUT has {table.size} entries, descriptor says {count}")
        except Exception:  # malformed LUT: skip it, the other presets still work
            log.debug("skipping unreadable VOI LUT %d", i, exc_info=True)
            continue
        table = table[:count]
        top = max(float((1 << bits) - 1), float(table.max()), 1.0)
        if values_min < 0 and first >= 1 << 15:  # descriptor stored as US for signed input
            first -= 1 << 16
        name = str(item.get("LUTExplanation", "") or "").strip() or f"VOI LUT {i + 1}"
        windows.append(Window.from_lut(VoiLut(float(first), table / top, name), name))
    return windows


def display_inversion(ds: Dataset, photometric: str) -> bool:
    """The rule stated in the module docstring."""
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    return (photometric == "MONOCHROME1") != (shape == "INVERSE" and photometric == "MONOCHROME2")


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm: Pixel Spacing, else Imager Pixel Spacing; zeros mean unknown."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            row, col = (float(v) for v in _multi(ds.get(keyword))[:2])
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0 and np.isfinite(row) and np.isfinite(col):
            return row, col
    return None


def patient_info(ds: Dataset) -> PatientInfo:
    """Identifying attributes as plain strings (None when absent or empty)."""
    values: dict[str, str | None] = {}
    for field_name, keyword in _IDENTIFIERS.items():
        value = ds.get(keyword)
        text = "\\".join(str(v) for v in _multi(value)).strip() if value is not None else ""
        values[field_name] = text or None
    return PatientInfo(**values)


def load_dicom(path: Path, data: bytes) -> XRay:
    """The whole chain for one DICOM file."""
    ds = read_dataset(path, data)
    photometric = _check_image_attributes(path, ds)
    stored = decode_pixels(path, ds)
    bits = _int(ds.get("BitsStored"), 16)
    voi: list[Window] = []
    if photometric in MONOCHROME:
        if stored.ndim != 2:
            raise ImageLoadError(path, f"{photometric} image decoded with {stored.shape[2]} channels")
        values = require_finite(np.asarray(apply_modality_lut(stored, ds), dtype=np.float32), path)
        valid = padding_mask(stored, ds)
        low, high = stored_range(ds)
        ends = np.asarray(apply_modality_lut(np.array([low, high]), ds), dtype=np.float64)
        full = presets.full_range_window(float(ends.min()), float(ends.max()))
        voi = file_windows(ds) + file_voi_luts(ds, float(ends.min()))
        rescaled = "ModalityLUTSequence" in ds or float(ds.get("RescaleSlope", 1) or 1) != 1.0
        display_ready = bits <= 8 and not rescaled
    else:
        rgb = apply_color_lut(stored, ds) if photometric == "PALETTE COLOR" else stored
        if rgb.ndim != 3:
            raise ImageLoadError(path, f"{photometric} image decoded without color channels")
        values, valid = require_finite(gray_values(rgb)[0], path), None  # Rec. 601 luma, as in DICOM YBR_FULL
        top = 255 if rgb.dtype == np.uint8 else (1 << (16 if photometric == "PALETTE COLOR" else bits)) - 1
        full = presets.full_range_window(0.0, float(top))
        display_ready = True  # color captures are made for display; VOI does not apply to them
    auto = presets.automatic_window(values, valid)
    data_range = presets.data_range_window(values, valid)
    if voi:
        windows = [*voi, auto, data_range, full]
    elif display_ready:
        windows = [full, auto, data_range]
    else:
        windows = [auto, data_range, full]
    modality = str(ds.get("Modality", "") or "").strip() or None
    return XRay(
        values=values,
        windows=windows,
        invert=display_inversion(ds, photometric) if photometric in MONOCHROME else False,
        source=path,
        bits_stored=bits,
        photometric=photometric,
        modality=modality,
        pixel_spacing=pixel_spacing(ds),
        identifiers=patient_info(ds),
    )

"""The source film's DICOM header, when it has one: identity, geometry and the reference to it."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from core.errors import R2CError


def source_header(path: str | Path) -> Dataset | None:
    """The source's DICOM header without pixel data, or None when the source is not DICOM."""
    from core.imaging.dicom import has_dicom_magic, looks_like_bare_dicom
    from core.imaging.load import DICOM_SUFFIXES
    from core.imaging.quiet import quiet_decoders

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return None
    if not (has_dicom_magic(head) or looks_like_bare_dicom(head) or path.suffix.lower() in DICOM_SUFFIXES):
        return None
    try:
        with quiet_decoders():
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # pydicom raises many types on garbage: treat as "no DICOM header"
        return None
    return ds if ds.get("SOPInstanceUID") and ds.get("SOPClassUID") else None


def require_source_header(path: str | Path, what: str) -> Dataset:
    """The source's DICOM header, or a clear error: ``what`` (e.g. a DICOM SEG) must reference a DICOM film."""
    ds = source_header(path)
    if ds is None:
        raise R2CError(path, f"{what} needs a DICOM source film (this one is not DICOM or has no SOP Instance UID)")
    return ds


def source_reference(ds: Dataset | None) -> Dataset | None:
    """A Source Image Sequence item (SOP Class/Instance UID) for the film, or None."""
    if ds is None:
        return None
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


# Attributes a derived object takes from its source: identity (patient, study) and geometry.
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID",
           "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription",
           "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID", "Modality", "Rows", "Columns", "SamplesPerPixel",
           "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
           "PixelSpacing", "ImagerPixelSpacing", "PatientOrientation", "ImageLaterality", "Laterality",
           "FrameOfReferenceUID", "NumberOfFrames")


_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
          "AccessionNumber", "ReferringPhysicianName")


def clean_header(ds: Dataset) -> Dataset:
    """The source's identity and geometry attributes whose values are valid for their VR.

    Real (and anonymised) films carry values like a hash in Patient's Birth Date; highdicom
    rightly refuses to copy those. An invalid value is left out here, and the Type 2 patient and
    study attributes are then present but empty (unknown), rather than failing the export.
    """
    from pydicom.config import RAISE
    from pydicom.valuerep import validate_value

    out = Dataset()
    for keyword in _COPIED:
        element = ds.get(keyword)
        if element is None:
            continue
        elem = ds[keyword]
        try:
            values = elem.value if elem.VM > 1 else [elem.value]
            for v in values:
                if v is not None and v != "":
                    validate_value(elem.VR, v, RAISE)
        except (ValueError, TypeError):
            continue
        out.add(elem)
    for keyword in _TYPE2:
        if keyword not in out:
            setattr(out, keyword, "")  # present but empty: unknown
    out.file_meta = getattr(ds, "file_meta", Dataset())
    return out


def save_dicom(ds: Dataset, path: Path) -> Path:
    """Write a DICOM object we made (a conformant file with meta header); a write failure is one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    except OSError as exc:
        raise R2CError(path, f"cannot be written ({exc.strerror or exc})") from None
    return path

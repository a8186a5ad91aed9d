"""Saving a restored image: PNG, or a DICOM Secondary Capture marked as derived.

The DICOM object states what it is (ImageType DERIVED\\SECONDARY, a DerivationDescription
naming the model and the number of passes), gets new series and instance UIDs, and keeps
the source's patient and study identification so it files next to the original. That is
what a clinician exporting from the viewer wants; reader mode never exports images.
Called from a worker (file I/O).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.imaging import PatientInfo

SOFTWARE = "R2C Review"


@dataclass(frozen=True)
class RestoredImage:
    """What is exported: the generator's output and where it came from."""

    pixels: np.ndarray  # H x W float32 in [0, 1], the restoration as produced (256 x 256)
    variant_id: str
    model_name: str  # e.g. "R2C-GAN (Q=1)"
    iterations: int
    model_sha256: str | None
    source: Path
    source_size: tuple[int, int]  # (width, height) of the original
    source_spacing: tuple[float, float] | None
    source_modality: str | None
    identifiers: PatientInfo

    @property
    def derivation(self) -> str:
        passes = "1 pass" if self.iterations == 1 else f"{self.iterations} passes"
        sha = f", model sha256 {self.model_sha256[:12]}" if self.model_sha256 else ""
        return f"Restored with {self.model_name} ({self.variant_id}), {passes}{sha}; R2C Review"[:1024]

    def spacing(self) -> tuple[float, float] | None:
        """Pixel spacing of the exported matrix (the original's, scaled to the new size)."""
        if self.source_spacing is None:
            return None
        h, w = self.pixels.shape
        return (self.source_spacing[0] * self.source_size[1] / h, self.source_spacing[1] * self.source_size[0] / w)


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    from core.imaging import to_uint8 as core_to_uint8

    return core_to_uint8(pixels)


def write_png(path: str | Path, image: RestoredImage) -> Path:
    """8-bit grayscale PNG of the restoration."""
    from PySide6.QtGui import QImage

    from app.qt_util import gray_qimage

    path = Path(path)
    qimage: QImage = gray_qimage(to_uint8(image.pixels))
    qimage.setText("Description", image.derivation)
    if not qimage.save(str(path), "PNG"):
        from core.errors import ImageLoadError

        raise ImageLoadError(path, "cannot be written (check the folder and its permissions)")
    return path


def _source_reference(source: Path):  # -> pydicom Dataset | None
    """SOP Class/Instance of a DICOM source, for the Source Image Sequence."""
    import pydicom

    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True, force=True)
        sop_class, sop_uid = ds.get("SOPClassUID"), ds.get("SOPInstanceUID")
    except Exception:  # not DICOM, or unreadable header: no reference then
        return None
    if not sop_class or not sop_uid:
        return None
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_uid
    return item


def write_dicom_sc(path: str | Path, image: RestoredImage) -> Path:
    """Secondary Capture Image Storage, 8-bit MONOCHROME2, marked DERIVED, new UIDs."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    from core import __version__

    path = Path(path)
    pixels = to_uint8(image.pixels)
    now = _dt.datetime.now()
    sop_uid = generate_uid()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ids = image.identifiers
    # Patient and study: from the source, so the derived image files with the original.
    ds.PatientName = ids.patient_name or ""
    ds.PatientID = ids.patient_id or ""
    ds.PatientBirthDate = ids.birth_date or ""
    ds.PatientSex = ids.sex or ""
    if ids.age:
        ds.PatientAge = ids.age
    ds.StudyInstanceUID = ids.study_uid or generate_uid()
    ds.StudyDate = ids.study_date or ""
    ds.StudyTime = ids.study_time or ""
    ds.AccessionNumber = ids.accession_number or ""
    ds.ReferringPhysicianName = ids.referring_physician or ""
    ds.StudyID = ""
    if ids.study_description:
        ds.StudyDescription = ids.study_description
    # A new series holding the restoration.
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 9901
    ds.SeriesDescription = f"Restored ({image.model_name})"[:64]
    ds.Modality = image.source_modality or "OT"
    ds.ConversionType = "WSD"
    ds.SecondaryCaptureDeviceManufacturer = SOFTWARE
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    ds.Manufacturer = SOFTWARE
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.InstanceCreationDate = ds.ContentDate
    ds.InstanceCreationTime = ds.ContentTime
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = image.derivation
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = image.derivation[:10240]
    reference = _source_reference(image.source)
    if reference is not None:
        ds.SourceImageSequence = [reference]
    spacing = image.spacing()
    if spacing is not None:
        ds.PixelSpacing = [f"{spacing[0]:.6g}", f"{spacing[1]:.6g}"]
    # Image pixel module.
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.WindowCenter = "127.5"
    ds.WindowWidth = "256"
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path

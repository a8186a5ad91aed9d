"""DICOM Secondary Capture of a restoration, built with highdicom.

The object is what a PACS needs to file it next to the original and to measure on it: the
source's patient and study identity, its rows, columns and pixel spacing (a native-resolution
restoration has the film's matrix), a Source Image Sequence pointing at the film, Image Type
DERIVED\\SECONDARY and a Derivation Description naming the model and passes. New series and
instance UIDs; MONOCHROME2, 8 or 16 bits.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import highdicom as hd
from pydicom.uid import generate_uid

from core.errors import R2CError
from core.exports.derived import SOFTWARE, RestoredImage, export_pixels, export_spacing, quantize
from core.exports.source import clean_header, save_dicom, source_header, source_reference
from core.imaging.quiet import quiet_decoders

SERIES_NUMBER = 9901


def _orientation(header) -> tuple[str, str] | None:
    values = [str(v) for v in (header.get("PatientOrientation") or [])] if header is not None else []
    return (values[0], values[1]) if len(values) == 2 and all(values) else None


def write_dicom_sc(path: str | Path, image: RestoredImage, bits: int = 8) -> Path:
    """Secondary Capture Image Storage of the restoration at the film's aspect ratio (its own size when native)."""
    from core import __version__

    path = Path(path)
    pixels = quantize(export_pixels(image), bits)
    spacing = export_spacing(image, pixels.shape)
    header = source_header(image.source)
    ids = image.identifiers
    orientation = _orientation(header)
    common = dict(
        pixel_array=pixels, photometric_interpretation="MONOCHROME2", bits_allocated=bits,
        coordinate_system="PATIENT", series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=1, manufacturer=SOFTWARE,
        pixel_spacing=spacing, patient_orientation=orientation or ("L", "F"), transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    with quiet_decoders():  # pydicom/highdicom warnings on odd source values are not the user's problem
        try:
            if header is not None:
                sc = hd.sc.SCImage.from_ref_dataset(clean_header(header), **common)
            else:
                sc = hd.sc.SCImage(
                    study_instance_uid=ids.study_uid or generate_uid(), patient_id=ids.patient_id,
                    patient_name=ids.patient_name, patient_sex=None, accession_number=ids.accession_number,
                    **common)
        except (ValueError, TypeError) as exc:
            raise R2CError(path, f"cannot build the DICOM Secondary Capture ({exc})") from None
    if orientation is None:
        sc.PatientOrientation = ""  # unknown (Type 2): highdicom needs a value to build the module
    now = _dt.datetime.now()
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = image.derivation
    sc.ImageComments = image.derivation
    sc.SeriesDescription = f"Restored ({image.model_name})"[:64]
    sc.SoftwareVersions = __version__
    sc.SecondaryCaptureDeviceManufacturer = SOFTWARE
    sc.SecondaryCaptureDeviceSoftwareVersions = __version__
    sc.ContentDate, sc.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    sc.BurnedInAnnotation = "NO"
    if image.source_modality:
        sc.Modality = image.source_modality[:16]
    reference = source_reference(header)
    if reference is not None:
        sc.SourceImageSequence = [reference]
    top = (1 << bits) - 1
    sc.WindowCenter, sc.WindowWidth = f"{top / 2:g}", f"{top + 1}"
    return save_dicom(sc, path)

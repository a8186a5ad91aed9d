"""Lung masks as DICOM Segmentation objects (highdicom), referencing the film they were made on.

A binary SEG with one segment (both lungs, SNOMED CT "Lung"), made by an automatic
algorithm (the lung U-Net, identified by name and weights hash), on the source's own
rows and columns, so that a PACS or OHIF viewer overlays it on the film. The source must be
DICOM: a SEG has no meaning without the image it references.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from core.errors import R2CError
from core.exports.derived import SOFTWARE
from core.exports.source import clean_header, require_source_header, save_dicom
from core.imaging.quiet import quiet_decoders

SERIES_NUMBER = 9902
SEGMENT_LABEL = "Lungs"
ALGORITHM_NAME = "R2C Review lung U-Net (DenseNet-121)"


def _segment_description(algorithm_version: str) -> hd.seg.SegmentDescription:
    algorithm = hd.AlgorithmIdentificationSequence(name=ALGORITHM_NAME, version=algorithm_version[:64] or "unknown",
                                                   family=codes.DCM.ArtificialIntelligence)
    return hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL, segmented_property_category=codes.SCT.Organ,
        segmented_property_type=codes.SCT.Lung, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm)


def write_dicom_seg(path: str | Path, mask: np.ndarray, source: str | Path, algorithm_version: str = "") -> Path:
    """Binary DICOM SEG of ``mask`` (H x W bool) over the DICOM film ``source``.

    A mask of another size (e.g. computed at a presentation size) is resized, nearest
    neighbour, to the film's rows and columns.
    """
    from core import __version__

    path = Path(path)
    header = require_source_header(source, "a DICOM Segmentation")
    if int(header.get("NumberOfFrames", 1) or 1) != 1:
        raise R2CError(source, "multi-frame films are not supported for DICOM SEG export")
    rows, cols = int(header.Rows), int(header.Columns)
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    if mask.shape != (rows, cols):
        mask = cv2.resize(mask.astype(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST).astype(bool)
    with quiet_decoders():  # pydicom/highdicom warnings on odd source values are not the user's problem
        try:
            seg = hd.seg.Segmentation(
                source_images=[clean_header(header)], pixel_array=mask.astype(np.uint8)[None],
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=[_segment_description(algorithm_version)],
                series_instance_uid=generate_uid(), series_number=SERIES_NUMBER, sop_instance_uid=generate_uid(),
                instance_number=1, manufacturer=SOFTWARE, manufacturer_model_name=SOFTWARE,
                software_versions=__version__, device_serial_number="none", omit_empty_frames=False,
                series_description="Lung segmentation (automatic)")
        except (ValueError, TypeError, AttributeError) as exc:
            raise R2CError(source, f"cannot build a DICOM Segmentation over this film ({exc})") from None
    return save_dicom(seg, path)


def read_dicom_seg(path: str | Path) -> tuple[np.ndarray, str]:
    """(mask H x W bool, SOP Instance UID of the film it segments) of a one-segment, one-film SEG."""
    path = Path(path)
    with quiet_decoders():  # pydicom/highdicom warnings on odd source values are not the user's problem
        try:
            seg = hd.seg.segread(path)
        except Exception as exc:  # pydicom/highdicom raise many types on files that are not a SEG
            raise R2CError(path, f"not a readable DICOM Segmentation ({exc})") from None
        refs = [item.ReferencedSOPInstanceUID for series in seg.ReferencedSeriesSequence
                for item in series.ReferencedInstanceSequence]
        if len(refs) != 1:
            raise R2CError(path, f"references {len(refs)} images; expected one film")
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=refs, segment_numbers=[1],
                                                   combine_segments=True)
    return np.asarray(pixels[0]).astype(bool), str(refs[0])

"""Loading radiographs: DICOM (any transfer syntax chest CR/DX use), PNG, JPEG, TIFF.

``load_xray(path)`` gives an :class:`XRay` with display-ready pixels (full DICOM display
chain), the modality values for re-windowing, window presets, and identifiers kept apart
for blinded views. Bad input raises :class:`core.errors.ImageLoadError` with a plain reason.
"""

from core.imaging.display import apply_inversion, apply_voi_lut, apply_windowing, render
from core.imaging.isolated import load_xray_isolated
from core.imaging.load import (
    SUPPORTED_SUFFIXES,
    is_supported,
    iter_images,
    load_xray,
    load_xray_array,
)
from core.imaging.window import VoiLut, Window
from core.imaging.xray import PatientInfo, XRay, to_uint8

__all__ = [
    "SUPPORTED_SUFFIXES",
    "PatientInfo",
    "VoiLut",
    "Window",
    "XRay",
    "apply_inversion",
    "apply_voi_lut",
    "apply_windowing",
    "is_supported",
    "iter_images",
    "load_xray",
    "load_xray_array",
    "load_xray_isolated",
    "render",
    "to_uint8",
]

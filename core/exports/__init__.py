"""Writing what the engine derives from a film: PNG, DICOM Secondary Capture, DICOM Segmentation.

Kept in ``core`` (no Qt) so that the command line and the app write the same files. DICOM
objects are built with highdicom, which checks the modules it writes against the standard.
"""

from core.exports.derived import RestoredImage, export_pixels
from core.exports.dicom_sc import write_dicom_sc
from core.exports.dicom_seg import read_dicom_seg, write_dicom_seg
from core.exports.png import write_png

__all__ = ["RestoredImage", "export_pixels", "read_dicom_seg", "write_dicom_sc", "write_dicom_seg", "write_png"]

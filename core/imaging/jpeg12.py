"""12-bit JPEG Extended (process 4) pixel data, decoded by GDCM directly.

Older CR archives store chest films as 12-bit lossy JPEG (1.2.840.10008.1.2.4.51).
pydicom's GDCM and Pillow plugins refuse 12-bit samples, and the only pydicom plugin that
takes them (pylibjpeg-libjpeg) is GPL, which this project does not ship. GDCM's own codec
decodes them fine when handed the codestream, as done here (after pydicom's GDCM plugin).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames


def decode_jpeg12(ds: Dataset) -> np.ndarray:
    """Stored values (rows x cols) of a single-frame monochrome 12-bit JPEG Extended image."""
    import gdcm  # imported lazily: only these rare files need it

    rows, cols = int(ds.Rows), int(ds.Columns)
    bits_stored, signed = int(ds.BitsStored), int(ds.PixelRepresentation) == 1
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ValueError("only monochrome 12-bit JPEG is supported")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))

    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(frame)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((cols, rows, 1))
    image.SetDataElement(element)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(gdcm.PhotometricInterpretation.MONOCHROME2))
    image.SetPixelFormat(gdcm.PixelFormat(1, 16, bits_stored, bits_stored - 1, int(signed)))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    buffer = image.GetBuffer()
    if buffer is None:
        raise ValueError("GDCM could not decode the JPEG codestream")
    raw = np.frombuffer(buffer.encode("utf-8", "surrogateescape"), dtype=np.uint16)
    if raw.size != rows * cols:
        raise ValueError(f"decoded {raw.size} samples, expected {rows * cols}")
    stored = (raw & np.uint16((1 << bits_stored) - 1)).astype(np.int32).reshape(rows, cols)
    if signed:  # sign-extend from the top stored bit
        stored = np.where(stored >= 1 << (bits_stored - 1), stored - (1 << bits_stored), stored)
        return stored.astype(np.int16)
    return stored.astype(np.uint16)

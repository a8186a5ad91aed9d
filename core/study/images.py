"""The one place the study engine reads X-ray files: through ``core.imaging.load_xray_isolated``.

Renditions start from the same display image the viewer shows (``XRay.display``: windowed,
MONOCHROME1 inverted, float32 in [0, 1]), so a DICOM case looks in the study as it does in
the viewer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_display(path: str | Path) -> np.ndarray:
    """Display-ready pixels of an X-ray file; raises ImageLoadError naming the file.

    Decoded in a child process (study creation and precompute must survive a decoder crash).
    """
    from core.imaging import load_xray_isolated

    return np.asarray(load_xray_isolated(path).display, dtype=np.float32)

"""The engine objects the app shares (restorer, segmenter), created on first use in a worker.

Creating them imports torch (seconds), so nothing here runs at start-up; the GUI thread
never calls these functions.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.restore import Restorer
    from core.segment import LungSegmenter

_lock = threading.Lock()
_restorer: Restorer | None = None
_segmenter: tuple[Path, LungSegmenter] | None = None


def restorer() -> Restorer:
    global _restorer
    with _lock:
        if _restorer is None:
            from core.restore import Restorer

            _restorer = Restorer()
        return _restorer


def segmenter() -> LungSegmenter:
    """The installed lung segmenter; raises core.errors.WeightsError when there is none."""
    global _segmenter
    from core.segment import LungSegmenter
    from core.variants import SEGMENTER_ID, weights_path

    path = weights_path(SEGMENTER_ID)
    with _lock:
        if _segmenter is None or path is None or _segmenter[0] != path:
            _segmenter = (path, LungSegmenter(path)) if path is not None else None
            if _segmenter is None:
                LungSegmenter()  # raises the WeightsError that explains what is missing
        return _segmenter[1]


def reset() -> None:
    """Forget loaded models (tests switch R2C_MODELS_DIR between cases)."""
    global _restorer, _segmenter
    with _lock:
        _restorer = None
        _segmenter = None

"""Window presets computed from the pixels, for files that carry none (and for every viewer).

- "Automatic": robust 0.5-99.5 % percentiles of the pixel values, ignoring padding and the
  pure extremes (blank collimator borders, burnt-out background), so the anatomy gets the
  contrast rather than the empty frame.
- "Data range": lowest to highest value actually present (padding excluded).
- "Full range": the nominal range of the stored bit depth (e.g. 0..255 for 8-bit, 0..4095
  for 12-bit), through the modality rescale for DICOM.
"""

from __future__ import annotations

import numpy as np

from core.imaging.xray import Window

AUTOMATIC = "Automatic"
DATA_RANGE = "Data range"
FULL_RANGE = "Full range"

_MAX_SAMPLES = 1_000_000
_PERCENTILES = (0.5, 99.5)


def _sample(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Up to about a million finite values (a regular subsample: percentiles barely move)."""
    flat = values.ravel() if valid is None else values[valid]
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = flat[::step]
    return sample[np.isfinite(sample)]


def automatic_window(values: np.ndarray, valid: np.ndarray | None = None) -> Window:
    """Robust window from the percentiles of the informative pixels."""
    sample = _sample(values, valid)
    if sample.size == 0:
        return Window.from_range(0.0, 1.0, AUTOMATIC)
    low, high = float(sample.min()), float(sample.max())
    inner = sample[(sample > low) & (sample < high)]
    # Pure extremes are usually blank border or saturated background; drop them unless
    # they are most of the image (then the image itself is that flat).
    if inner.size >= sample.size // 2 and inner.size > 0:
        sample = inner
    p_low, p_high = np.percentile(sample, _PERCENTILES)
    return Window.from_range(float(p_low), float(p_high), AUTOMATIC)


def data_range_window(values: np.ndarray, valid: np.ndarray | None = None) -> Window:
    """Window spanning the values present, padding excluded."""
    sample = values if valid is None else values[valid]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return Window.from_range(0.0, 1.0, DATA_RANGE)
    return Window.from_range(float(sample.min()), float(sample.max()), DATA_RANGE)


def full_range_window(low: float, high: float) -> Window:
    """Window spanning the nominal range ``low..high`` of the stored bit depth."""
    return Window.from_range(min(low, high), max(low, high), FULL_RANGE)

"""Window presets computed from the pixels, for files that carry none (and for every viewer).

- "Automatic": robust 0.5-99.5 % percentiles of the pixel values, ignoring padding and the
  pure extremes (blank collimator borders, burnt-out background), so the anatomy gets the
  contrast rather than the empty frame.
- "Data range": lowest to highest value actually present (padding excluded).
- "Full range": the nominal range of the stored bit depth (e.g. 0..255 for 8-bit, 0..4095
  for 12-bit), through the modality rescale for DICOM.
- "Lung", "Mediastinum", "Bone": chest presets for radiographs, relative to the film's own
  pixel distribution (:func:`chest_windows`); the viewer adds them, loaders do not.
"""

from __future__ import annotations

import numpy as np

from core.imaging.window import Window

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


# Chest presets for radiographs. A radiograph has no Hounsfield units, so CT's fixed lung,
# mediastinum and bone windows mean nothing here; these are defined on the film's own pixel
# distribution instead, as percentiles counted from the darkest pixel on screen (so a
# MONOCHROME1 film gets the same-looking preset as its MONOCHROME2 twin). Heuristics for
# reading, not calibrated densities: (name, darkest percentile, brightest percentile).
LUNG = "Lung"
MEDIASTINUM = "Mediastinum"
BONE = "Bone"
CHEST_PRESETS: tuple[tuple[str, float, float], ...] = (
    (LUNG, 0.5, 75.0),  # the dark three quarters stretched: vessels and airspace in the lung fields
    (MEDIASTINUM, 25.0, 99.5),  # the bright part: heart, mediastinum, retrocardiac and below the diaphragm
    (BONE, 50.0, 100.0),  # the brightest half up to the maximum, unclipped: ribs, clavicles, spine
)


def chest_windows(values: np.ndarray, invert: bool, valid: np.ndarray | None = None) -> list[Window]:
    """The :data:`CHEST_PRESETS` of one film, in its own value units (see the comment above)."""
    sample = _sample(values, valid)
    if sample.size == 0:
        return [Window.from_range(0.0, 1.0, name) for name, _, _ in CHEST_PRESETS]
    windows = []
    for name, dark, bright in CHEST_PRESETS:
        # On a MONOCHROME1 film the darkest pixels on screen are the highest values.
        q = (100.0 - bright, 100.0 - dark) if invert else (dark, bright)
        low, high = np.percentile(sample, q)
        windows.append(Window.from_range(float(low), float(high), name))
    return windows


def format_number(value: float) -> str:
    """A window figure as radiologists read it: whole numbers from 100 up, else 3 significant
    digits, never scientific notation ("W 30000", not "W 3e+04")."""
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if value == 0:
        return "0"
    return np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="-")


def window_label(window: Window) -> str:
    """ "W 30000 / L 15000": width and centre in the film's own (display) units."""
    return f"W {format_number(window.width)} / L {format_number(window.center)}"

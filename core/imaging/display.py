"""The display end of the chain, on modality values: VOI (window or LUT), then inversion.

Named like pydicom's steps (``apply_windowing``, ``apply_voi_lut``) but working on a
:class:`~core.imaging.window.Window` instead of a dataset, so a viewer can re-window the
same ``values`` without the file. Output is display level in [0, 1] (0 = black).
"""

from __future__ import annotations

import numpy as np

from core.imaging.window import VoiLut, Window

_ONE = np.float32(1.0)


def apply_windowing(values: np.ndarray, window: Window) -> np.ndarray:
    """Window center/width per DICOM PS3.3 C.11.2.1.2, scaled to [0, 1].

    LINEAR:       x <= c - 0.5 - (w-1)/2 -> 0;  x > c - 0.5 + (w-1)/2 -> 1;
                  else ((x - (c - 0.5)) / (w - 1) + 0.5).
    LINEAR_EXACT: x <= c - w/2 -> 0;  x > c + w/2 -> 1;  else (x - c) / w + 0.5.
    SIGMOID:      1 / (1 + exp(-4 (x - c) / w)).
    The linear ramps are computed as ``(x - lower) / span`` (the same function), so that a
    0..255 window on 8-bit data gives exactly ``x / 255``.
    """
    x = np.asarray(values, dtype=np.float32)
    c, w = float(window.center), float(window.width)
    if window.function == "SIGMOID":
        z = np.clip(np.float32(-4.0 / w) * (x - np.float32(c)), -80.0, 80.0)
        return (_ONE / (_ONE + np.exp(z))).astype(np.float32)
    if window.function == "LINEAR_EXACT":
        lower, span = c - w / 2.0, w
    else:
        lower, span = c - 0.5 - (w - 1.0) / 2.0, w - 1.0
    if span <= 0:  # LINEAR with width 1: a threshold at c - 0.5
        return (x > np.float32(lower)).astype(np.float32)
    y = (x - np.float32(lower)) / np.float32(span)
    return np.clip(y, 0.0, 1.0, out=y).astype(np.float32, copy=False)


def apply_lut(values: np.ndarray, lut: VoiLut) -> np.ndarray:
    """Look ``values`` up in a VOI LUT (clamped at both ends, nearest entry for non-integers)."""
    x = np.asarray(values, dtype=np.float64)
    index = np.clip(np.rint(x - lut.first_mapped), 0, len(lut.table) - 1).astype(np.intp)
    return lut.table[index]


def apply_voi_lut(values: np.ndarray, window: Window) -> np.ndarray:
    """The VOI step: the window's LUT when it has one, else its center/width function."""
    if window.lut is not None:
        return apply_lut(values, window.lut)
    return apply_windowing(values, window)


def apply_inversion(display: np.ndarray) -> np.ndarray:
    """Swap black and white (MONOCHROME1, or Presentation LUT Shape INVERSE)."""
    return (_ONE - display).astype(np.float32, copy=False)


def render(values: np.ndarray, window: Window, invert: bool) -> np.ndarray:
    """Display levels in [0, 1]: VOI first, inversion after it (PS3.4 N.2 order)."""
    display = apply_voi_lut(values, window)
    return apply_inversion(display) if invert else np.ascontiguousarray(display, dtype=np.float32)

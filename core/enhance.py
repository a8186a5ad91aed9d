"""Classic contrast enhancements, as study candidates beside the R2C-GAN generators.

A reader study is more convincing when the learned restorations compete not only with the
original but with what a PACS viewer already offers. Both methods work on a display image
(float32 H x W in [0, 1]) through OpenCV, on a 16-bit intermediate for CLAHE so that the
float input keeps its precision, and return the same form.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_CLAHE_CLIP = 2.0
DEFAULT_CLAHE_TILES = 8


def _check(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {img.shape}")
    return np.clip(img, 0.0, 1.0)


def clahe(image: np.ndarray, clip_limit: float = DEFAULT_CLAHE_CLIP, tiles: int = DEFAULT_CLAHE_TILES) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization (OpenCV), ``tiles`` x ``tiles`` grid."""
    if clip_limit <= 0 or tiles < 1:
        raise ValueError(f"CLAHE needs clip_limit > 0 and tiles >= 1 (got {clip_limit}, {tiles})")
    img16 = np.round(_check(image) * 65535.0).astype(np.uint16)
    out = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tiles, tiles)).apply(img16)
    return (out.astype(np.float32) / 65535.0).astype(np.float32)


def histeq(image: np.ndarray) -> np.ndarray:
    """Global histogram equalization (OpenCV, on 8 bits: cv2.equalizeHist takes 8-bit only)."""
    img8 = np.round(_check(image) * 255.0).astype(np.uint8)
    return (cv2.equalizeHist(img8).astype(np.float32) / 255.0).astype(np.float32)


ENHANCEMENTS = {"clahe": "CLAHE", "histeq": "Histogram equalization"}

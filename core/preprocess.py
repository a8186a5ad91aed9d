"""The one resize rule that every model input and every study pane goes through (no torch here).

Generators and the segmenter work on square inputs (256x256 by default). Downsampling uses
area interpolation (large DICOMs alias badly with bilinear), upsampling bilinear. The study
renders the original through this same function, so it cannot stand out by its resampling.
"""

from __future__ import annotations

import cv2
import numpy as np

MODEL_INPUT = 256  # the R2C-GAN generators' input size (the authors' test-time resize)


def to_square(image: np.ndarray, size: int = MODEL_INPUT) -> np.ndarray:
    """H x W display image in [0, 1] -> size x size float32 in [0, 1]."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {img.shape}")
    if img.shape != (size, size):
        shrinking = img.shape[0] >= size and img.shape[1] >= size
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.clip(img, 0.0, 1.0).astype(np.float32)

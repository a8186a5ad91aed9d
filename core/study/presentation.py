"""How a study shows its panes: "paper" (every pane at the model's 256 px) or "native".

* **paper**, as the R2C-GAN study: every candidate at 256 x 256 (the generators' input),
  then the same bicubic upsampling to the pane size with the film's aspect ratio restored.
* **native**: every candidate carried back to the film's own pixels by guided upsampling
  (``core.guided``: the original through the identity, a classic enhancement or generator
  through its change at 256 px), then the same area downsampling to at most ``size`` px on
  the long side (default 1024; never upsampled beyond the film's own size).

Either way the original and every candidate take the same path, so no pane stands out by
size, bit depth or resampling. The presentation is part of the study definition (and so of
its fingerprint), stored in the study row's ``presentation`` column (migration 0003; rows
written before it existed read as paper).
"""

from __future__ import annotations

import cv2
import numpy as np

from core.guided import guided_upsample

PRESENTATIONS = ("paper", "native")
DEFAULT_SIZE = {"paper": 512, "native": 1024}


def pane_shape(source_hw: tuple[int, int], size: int, presentation: str) -> tuple[int, int]:
    """(height, width) of a pane: the long side ``size`` (native: at most the film's own), aspect kept."""
    h, w = source_hw
    if presentation == "native":
        size = min(size, max(h, w))
    if h >= w:
        return size, max(1, round(size * w / h))
    return max(1, round(size * h / w)), size


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def paper_pane(candidate: np.ndarray, source_hw: tuple[int, int], size: int) -> np.ndarray:
    """A 256 x 256 candidate image -> the pane: bicubic to the pane shape, 8-bit, full window."""
    ph, pw = pane_shape(source_hw, size, "paper")
    return to_uint8(cv2.resize(np.asarray(candidate, np.float32), (pw, ph), interpolation=cv2.INTER_CUBIC))


def native_pane(display: np.ndarray, model_input: np.ndarray, candidate: np.ndarray, size: int) -> np.ndarray:
    """A candidate's 256-px result -> the pane: guided upsampling to the film, area downsampling, 8-bit."""
    full = guided_upsample(display, model_input, candidate)
    ph, pw = pane_shape(display.shape, size, "native")
    if (ph, pw) != full.shape:
        full = cv2.resize(full, (pw, ph), interpolation=cv2.INTER_AREA)
    return to_uint8(full)


# A real-or-synthetic study shows every film on the synthesizer's square grid (core.models.pix2pix
# IMAGE_SIZE; the paper's 224 x 224): real films are squashed to it by the same area resampling the
# synthesizer's input takes, synthetic films are already on it; then every film takes the same bicubic
# upsampling to a square pane of the study's size, 8-bit, full window. Shape, bit depth and resampling
# path are the same for every film, so none says by its format whether it is synthetic.
AUTHENTICITY_GRID = 224


def authenticity_pane(grid_image: np.ndarray, size: int) -> np.ndarray:
    """A film on the AUTHENTICITY_GRID -> its size x size 8-bit pane."""
    return to_uint8(cv2.resize(np.asarray(grid_image, np.float32), (size, size), interpolation=cv2.INTER_CUBIC))

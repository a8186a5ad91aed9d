"""Lung segmentation: display image -> lung mask aligned with it, plus lung-area figures.

Post-processing keeps the two largest connected components (the lungs) and fills their
holes, so a restored image with speckle does not get credit or blame for islands the
U-Net finds outside the chest.

Each film is also segmented mirrored left-right and the two probability maps are averaged
(``flip_average``). Measured on sources the model never trained on (leave one source out,
2026-12-03): Shenzhen films 0.9041 -> 0.9068 Dice, GeneralBlockchain COVID-19 films 0.8352 ->
0.8412 (agreed-region 0.9466 -> 0.9533); averaging over a second input size helped one source
and hurt the other, so it is not used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage

from core.device import pick_device
from core.errors import WeightsError
from core.models.segmenter import SEGMENTER_ARCH, SEGMENTER_INPUT, build_segmenter
from core.preprocess import to_square
from core.variants import SEGMENTER_ID, weights_path
from core.weights.model_file import Manifest, load_into, load_state, read_manifest


def to_segmenter_input(image: np.ndarray, size: int = SEGMENTER_INPUT) -> np.ndarray:
    """Resize to size x size and standardise per image (robust to window differences)."""
    img = to_square(image, size)
    std = float(img.std())
    return ((img - float(img.mean())) / (std if std > 1e-6 else 1.0))[None].astype(np.float32)


def clean_mask(mask: np.ndarray, keep: int = 2) -> np.ndarray:
    """Keep the ``keep`` largest components, drop tiny ones, fill holes."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1][:keep] + 1
    largest = areas.max()
    kept = [lab for lab in order if stats[lab, cv2.CC_STAT_AREA] >= 0.05 * largest]
    out = np.isin(labels, kept)
    return ndimage.binary_fill_holes(out)


@dataclass
class LungAreas:
    total_px: int
    fraction: float  # of the image area
    image_left_px: int  # lung on the image's left (the patient's right on a PA film)
    image_right_px: int
    total_mm2: float | None  # when pixel spacing is known


@dataclass
class Segmentation:
    mask: np.ndarray  # bool, same H x W as the input image
    probability: np.ndarray  # float32, same H x W
    areas: LungAreas


def lung_areas(mask: np.ndarray, pixel_spacing: tuple[float, float] | None = None) -> LungAreas:
    h, w = mask.shape
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    left = right = 0
    for lab in range(1, count):
        area = int(stats[lab, cv2.CC_STAT_AREA])
        if centroids[lab][0] < w / 2:
            left += area
        else:
            right += area
    total = int(mask.sum())
    mm2 = total * pixel_spacing[0] * pixel_spacing[1] if pixel_spacing else None
    return LungAreas(total, total / float(h * w), left, right, mm2)


class LungSegmenter:
    """The trained U-Net; raises WeightsError with a clear message when none is installed."""

    def __init__(self, weights: str | Path | None = None, device: torch.device | str | None = None,
                 flip_average: bool = True) -> None:
        self.flip_average = flip_average
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        path = Path(weights) if weights else weights_path(SEGMENTER_ID)
        if path is None:
            raise WeightsError(
                None,
                f"no trained lung segmenter installed ({SEGMENTER_ID}.safetensors in resources/models); "
                "train one with 'r2c-review train-seg' or pass --weights",
            )
        manifest: Manifest = read_manifest(path)
        if manifest.kind != "segmenter" or manifest.architecture != SEGMENTER_ARCH:
            raise WeightsError(path, f"holds a {manifest.kind} ({manifest.architecture}), not the lung segmenter")
        self.manifest = manifest
        self.input_size = manifest.input_size or SEGMENTER_INPUT
        self.model = build_segmenter()
        state, _ = load_state(path, manifest)
        load_into(self.model, state, path)
        self.model.eval().to(self.device)
        self._lock = threading.Lock()

    def probabilities(self, images: list[np.ndarray], batch_size: int = 4) -> list[np.ndarray]:
        """Lung probability maps at each input's own size."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = torch.from_numpy(np.stack([to_segmenter_input(im, self.input_size) for im in chunk])).to(self.device)
            with self._lock, torch.inference_mode():
                if self.flip_average:  # one batch: the films and their mirror images
                    both = torch.sigmoid(self.model(torch.cat([x, x.flip(-1)]))).float()
                    p = ((both[: len(chunk)] + both[len(chunk):].flip(-1)) / 2).cpu().numpy()[:, 0]
                else:
                    p = torch.sigmoid(self.model(x)).float().cpu().numpy()[:, 0]
            for im, prob in zip(chunk, p, strict=True):
                h, w = im.shape
                out.append(np.clip(cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1))
        return out

    def segment(self, image: np.ndarray, pixel_spacing: tuple[float, float] | None = None) -> Segmentation:
        return self.segment_many([image], [pixel_spacing])[0]

    def segment_many(
        self, images: list[np.ndarray], spacings: list[tuple[float, float] | None] | None = None
    ) -> list[Segmentation]:
        spacings = spacings or [None] * len(images)
        results = []
        for prob, spacing in zip(self.probabilities(images), spacings, strict=True):
            mask = clean_mask(prob >= 0.5)
            results.append(Segmentation(mask, prob.astype(np.float32), lung_areas(mask, spacing)))
        return results


def overlay(image: np.ndarray, mask: np.ndarray, opacity: float = 0.35,
            color: tuple[int, int, int] = (255, 80, 40)) -> np.ndarray:
    """RGB uint8 picture of a display image with its lung mask tinted and outlined."""
    gray = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)
    tint = np.array(color, np.float32)
    rgb[mask] = (1 - opacity) * rgb[mask] + opacity * tint
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = rgb.astype(np.uint8)
    thickness = max(1, round(max(mask.shape) / 400))
    cv2.drawContours(out, contours, -1, color, thickness)
    return out

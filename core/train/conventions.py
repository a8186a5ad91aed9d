"""Mask conventions of the lung-mask sources, and figures that stay fair across them.

The standard lung-field convention (JSRT, Montgomery, Shenzhen) follows the heart border. Some
public outlines do not: V7's take in the retrocardiac region by design, and the GeneralBlockchain
polygons on the COVID-19 image collection run a straight medial border down the mediastinum
(measured 2026-12-03: a model trained on Shenzhen alone drew lung inside them at precision 0.97
but covered only 74 % of them, on every one of their 98 films; 53 % of the disagreement lies in
the medial third of the chest). Dice between the two conventions is therefore capped well below
0.93 whatever the model, so every figure here also reports precision, recall and the Dice over the
pixels both conventions agree on.
"""

from __future__ import annotations

import cv2
import numpy as np

HEART_INCLUDING = ("gbcovid", "v7covid")  # sources in ../shared/data/lung_masks whose outlines take in the heart
# outlines of films from one image collection (the COVID-19 image data collection): leaving one out
# of training leaves out the other too, or the "unseen" source would not be unseen
SAME_COLLECTION = {"gbcovid": ("v7covid",), "v7covid": ("gbcovid",)}


def standard_hint(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a heart-including outline says about the standard (heart-excluded) lung field:
    (target, weight) maps, float32.

    Both conventions agree that the film outside the outline (beyond a small margin) is not lung
    and that the lateral half of each lung, row by row, is; they disagree medially, where one
    follows the heart border and the other the mediastinum. Those pixels get weight 0."""
    size = mask.shape[0]
    margin = max(1, size // 64)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    m8 = mask.astype(np.uint8)
    outside = cv2.dilate(m8, kernel) == 0
    inner = cv2.erode(m8, kernel) > 0
    lateral = np.zeros(mask.shape, bool)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(m8, connectivity=8)
    if count > 1:
        middle = float(np.average(centroids[1:, 0], weights=stats[1:, cv2.CC_STAT_AREA]))
        cols = np.arange(mask.shape[1])[None, :]
        for lab in range(1, count):
            lung = labels == lab
            rows = lung.any(axis=1)[:, None]
            right = np.where(lung, cols, -1).max(axis=1, keepdims=True)
            left = np.where(lung, cols, mask.shape[1]).min(axis=1, keepdims=True)
            half = (left + right) / 2.0
            side = cols <= half if centroids[lab, 0] < middle else cols >= half
            lateral |= lung & side & rows
    target = (lateral & inner).astype(np.float32)
    weight = (outside | (lateral & inner)).astype(np.float32)
    return target, weight


def mask_figures(predicted: np.ndarray, truth: np.ndarray, heart_including: bool) -> dict[str, float]:
    """Dice, IoU, precision, recall and area ratio of a predicted standard lung mask against an
    outline; against a heart-including outline also ``agreed_dice``, the Dice over the pixels
    both conventions agree on (``standard_hint``), which a correct standard mask scores near 1."""
    p, t = predicted.astype(bool), truth.astype(bool)
    inter, ps, ts = float((p & t).sum()), float(p.sum()), float(t.sum())
    union = float((p | t).sum())
    out = {"dice": 2 * inter / (ps + ts) if ps + ts else 1.0, "iou": inter / union if union else 1.0,
           "precision": inter / ps if ps else 1.0, "recall": inter / ts if ts else 1.0,
           "area_ratio": ps / ts if ts else float("inf") if ps else 1.0}
    if heart_including:
        target, weight = standard_hint(t)
        w = weight > 0
        pa, ta = p & w, target > 0
        denom = float(pa.sum() + ta.sum())
        out["agreed_dice"] = 2 * float((pa & ta).sum()) / denom if denom else 1.0
    return out


FIGURES = ("dice", "iou", "precision", "recall", "area_ratio", "agreed_dice")


def mean_figures(rows: list[dict[str, float]], digits: int | None = None) -> dict[str, float]:
    """The mean of each figure that every row carries (``agreed_dice`` only where all outlines
    take in the heart), optionally rounded."""
    out = {}
    for key in FIGURES:
        if rows and all(key in r for r in rows):
            value = float(np.mean([r[key] for r in rows]))
            out[key] = round(value, digits) if digits is not None else value
    return out

"""Synthetic chest-radiograph-like images, made procedurally, for the demo study and tests.

The project may not ship real patient images, yet a demo and the study tests need pictures
that look and behave like PA chest films (dark lung fields, bright spine, heart and ribs),
with a spread of image quality so that restoration has something to do. Everything is
drawn from a seed, so a phantom is reproducible bit for bit.

Convention, as for a displayed X-ray: float32 in [0, 1], bright = dense (bone), dark = air.
A PA film is viewed as if facing the patient, so the heart sits on the image's right.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PhantomQuality:
    """Degradations applied after the anatomy is drawn (0 = none)."""

    noise: float = 0.01  # std of additive quantum-like noise
    blur: float = 0.0  # Gaussian blur sigma, in pixels at 512 px width
    contrast: float = 1.0  # < 1 compresses the range towards mid-gray (under-penetrated, hazy)

    @classmethod
    def from_level(cls, level: float) -> PhantomQuality:
        """One knob: 1 = clean film, 0 = poor (noisy, blurred, washed out)."""
        level = float(np.clip(level, 0.0, 1.0))
        bad = 1.0 - level
        return cls(noise=0.008 + 0.06 * bad, blur=3.5 * bad, contrast=1.0 - 0.5 * bad)


def _ellipse_mask(shape: tuple[int, int], center: tuple[float, float], axes: tuple[float, float],
                  angle: float = 0.0) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(mask, (round(center[0]), round(center[1])), (max(1, round(axes[0])), max(1, round(axes[1]))),
                angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    return mask


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.1))


def _lung_mask(shape: tuple[int, int], side: int, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """One lung field: a rounded apex, a straight-ish lateral wall and a domed base."""
    cx = w * (0.5 + side * rng.uniform(0.17, 0.2))
    top = h * rng.uniform(0.14, 0.18)
    bottom = h * rng.uniform(0.70, 0.76) + (h * 0.025 if side < 0 else 0)  # right hemidiaphragm higher
    half_w = w * rng.uniform(0.13, 0.155)
    inner = cx - side * half_w * 0.85
    outer = cx + side * half_w * 1.05
    pts = [
        (cx, top),
        (outer - side * half_w * 0.35, top + (bottom - top) * 0.12),
        (outer, top + (bottom - top) * 0.55),
        (outer + side * half_w * 0.05, bottom + h * 0.02),  # costophrenic angle
        (cx, bottom - h * 0.05),
        (inner, bottom - h * 0.02),
        (inner + side * half_w * 0.1, top + (bottom - top) * 0.35),
        (cx - side * half_w * 0.3, top + (bottom - top) * 0.05),
    ]
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(np.array(pts)).astype(np.int32)], 1.0, cv2.LINE_AA)
    return _soft(mask, w * 0.02)


def _ribs(shape: tuple[int, int], w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Posterior rib arcs on both sides, spaced down the chest."""
    layer = np.zeros(shape, np.float32)
    thickness = max(2, round(w * 0.016))
    for side in (-1, 1):
        for i in range(9):
            top = h * (0.13 + i * 0.058) + rng.normal(0, h * 0.004)
            axes = (round(w * (0.25 + 0.008 * i)), round(h * (0.10 + 0.006 * i)))
            # The arc starts at the spine (top of the ellipse) and sweeps laterally and down.
            start, end = (180, 270) if side < 0 else (270, 360)
            center = (round(w * 0.5 + side * w * 0.02), round(top + axes[1]))
            cv2.ellipse(layer, center, axes, 0, start, end, 1.0, thickness, cv2.LINE_AA)
    return _soft(layer, w * 0.004)


def _clavicles(shape: tuple[int, int], w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    layer = np.zeros(shape, np.float32)
    y = h * rng.uniform(0.13, 0.16)
    for side in (-1, 1):
        p0 = (round(w * (0.5 + side * 0.04)), round(y + h * 0.03))
        p1 = (round(w * (0.5 + side * 0.3)), round(y - h * 0.02))
        cv2.line(layer, p0, p1, 1.0, max(3, round(w * 0.025)), cv2.LINE_AA)
    return _soft(layer, w * 0.006)


def _vessels(shape: tuple[int, int], w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Branching vascular markings fanning out from each hilum."""
    layer = np.zeros(shape, np.float32)
    for side in (-1, 1):
        hilum = np.array([w * (0.5 + side * 0.09), h * 0.42])
        for _ in range(14):
            angle = rng.uniform(-0.6 * np.pi, 0.55 * np.pi)  # fanning outwards, mostly up and down
            length = w * rng.uniform(0.08, 0.2)
            end = hilum + length * np.array([side * np.cos(angle), np.sin(angle)])
            thick = max(1, round(w * rng.uniform(0.003, 0.008)))
            cv2.line(layer, tuple(np.round(hilum).astype(int)), tuple(np.round(end).astype(int)), 1.0, thick,
                     cv2.LINE_AA)
    return _soft(layer, w * 0.004)


def _opacities(shape: tuple[int, int], lungs: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Patchy peripheral, lower-zone ground-glass opacities (the COVID-19 pattern)."""
    layer = np.zeros(shape, np.float32)
    for side in (-1, 1):
        for _ in range(rng.integers(2, 5)):
            cx = w * (0.5 + side * rng.uniform(0.18, 0.28))
            cy = h * rng.uniform(0.45, 0.68)
            layer += _ellipse_mask(shape, (cx, cy), (w * rng.uniform(0.04, 0.08), h * rng.uniform(0.04, 0.08)),
                                   rng.uniform(0, 180))
    return _soft(np.clip(layer, 0, 1), w * 0.025) * lungs


def make_phantom(seed: int, size: tuple[int, int] = (512, 512), quality: float | PhantomQuality = 1.0,
                 disease: bool = False) -> np.ndarray:
    """A PA chest-film-like image, ``size`` = (width, height), float32 H x W in [0, 1]."""
    w, h = size
    rng = np.random.default_rng(seed)
    shape = (h, w)
    q = quality if isinstance(quality, PhantomQuality) else PhantomQuality.from_level(quality)

    body = _soft(_ellipse_mask(shape, (w * 0.5, h * 0.6), (w * rng.uniform(0.40, 0.46), h * 0.62)), w * 0.03)
    shoulders = _soft(_ellipse_mask(shape, (w * 0.5, h * 0.16), (w * 0.47, h * 0.12)), w * 0.03)
    body = np.maximum(body, shoulders)
    lungs = np.clip(_lung_mask(shape, -1, w, h, rng) + _lung_mask(shape, 1, w, h, rng), 0, 1)

    spine = _soft(_ellipse_mask(shape, (w * 0.5, h * 0.5), (w * 0.045, h * 0.55)), w * 0.012)
    mediastinum = _soft(_ellipse_mask(shape, (w * 0.5, h * 0.38), (w * 0.075, h * 0.22)), w * 0.02)
    heart = _soft(_ellipse_mask(shape, (w * rng.uniform(0.55, 0.58), h * rng.uniform(0.58, 0.62)),
                                (w * rng.uniform(0.12, 0.15), h * rng.uniform(0.12, 0.14)), rng.uniform(-25, -10)),
                  w * 0.015)
    abdomen = _soft((np.arange(h)[:, None] > h * 0.76).astype(np.float32) * body, w * 0.05)

    img = 0.04 + 0.46 * body  # air outside, soft tissue inside the body
    img += 0.12 * abdomen
    lungs = lungs * (1.0 - 0.85 * np.maximum(heart, mediastinum))  # the heart shadow hides lung behind it
    img -= 0.30 * lungs  # aerated lung is dark
    img += 0.14 * np.maximum(mediastinum, heart)
    img += 0.26 * spine
    img += 0.11 * _ribs(shape, w, h, rng) * (0.4 + 0.6 * lungs) * body
    img += 0.16 * _clavicles(shape, w, h, rng)
    img += 0.07 * _vessels(shape, w, h, rng) * lungs
    if disease:
        img += 0.16 * _opacities(shape, lungs, w, h, rng)
    # Gentle large-scale exposure variation across the film.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img *= 1.0 + 0.06 * np.sin(xx / w * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, np.pi))
    img = np.clip(img, 0.0, 1.0)
    return _degrade(img, q, rng)


def _degrade(img: np.ndarray, q: PhantomQuality, rng: np.random.Generator) -> np.ndarray:
    w = img.shape[1]
    if q.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), q.blur * w / 512)
    if q.contrast != 1.0:
        img = 0.5 + (img - 0.5) * q.contrast
    if q.noise > 0:
        noise = rng.normal(0.0, q.noise, img.shape).astype(np.float32)
        img = img + cv2.GaussianBlur(noise, (0, 0), 0.7) * 1.6
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float -> 8-bit, rounded; the form phantoms are saved in (PNG)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_phantom_set(folder, count: int, seed: int = 0, sizes: tuple[tuple[int, int], ...] = ((512, 512), (600, 500)),
                      ) -> list[tuple[str, str]]:
    """Write ``count`` phantoms as 8-bit PNGs named like the labelled data set (covid_NNNN / control_NNNN).

    Quality cycles poor / medium / high and half the cases carry opacities, like the paper's
    mixed-quality test draw. Returns (file name, label) pairs.
    """
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    levels = (0.15, 0.55, 0.95)
    written = []
    for i in range(count):
        disease = i % 2 == 1
        label = "COVID-19" if disease else "control"
        name = f"{'covid' if disease else 'control'}_{i + 1:04d}.png"
        image = make_phantom(int(rng.integers(0, 2**31)), sizes[i % len(sizes)],
                             levels[(i // 2) % len(levels)] + float(rng.uniform(-0.1, 0.05)), disease)
        cv2.imwrite(str(folder / name), to_uint8(image))
        written.append((name, label))
    return written

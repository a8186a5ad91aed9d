"""A blind blend of X-ray artifacts, for building the poor-quality training domain.

Nobody labelled image quality in our data, so part of the poor-quality domain is made by
degrading clean images that are held apart from the high-quality domain (different
patients). The artifacts are those real chest films suffer from: spatially varying noise
(quantum mottle that is worse where the film is thin or dark), blur from motion or a
defocused/soft detector with random kernels, under- and over-exposure, low contrast,
saturation (clipping) and lossy compression. A random subset of them is applied in a
random order with random strengths, so a restorer cannot learn one fixed inverse.

Everything is driven by a ``numpy.random.Generator``: the same seed gives the same
degradation, which makes training and evaluation reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

Image = np.ndarray  # float32 H x W in [0, 1]


@dataclass
class Degradation:
    image: Image
    steps: list[str] = field(default_factory=list)  # what was applied, in order, with its strength


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Random smooth field in [0, 1], varying over roughly ``scale`` of the image size."""
    h, w = shape
    gh, gw = max(2, int(round(1 / scale))), max(2, int(round(1 / scale)))
    coarse = rng.random((gh, gw)).astype(np.float32)
    f = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    f -= f.min()
    return f / max(float(f.max()), 1e-6)


def spatial_noise(img: Image, rng: np.random.Generator, strength: float) -> tuple[Image, str]:
    """Gaussian + signal-dependent noise whose level varies smoothly across the image."""
    sigma = 0.01 + 0.06 * strength
    modulation = 0.4 + 1.2 * _smooth_field(img.shape, rng, rng.uniform(0.2, 0.5))
    # Quantum noise is stronger where fewer photons arrive: dark (lung) regions of the display.
    signal_dependent = 0.5 + (1.0 - img)
    noise = rng.standard_normal(img.shape).astype(np.float32) * sigma * modulation * signal_dependent
    return img + noise, f"noise(sigma={sigma:.3f})"


def _gaussian_kernel(rng: np.random.Generator, strength: float) -> np.ndarray:
    sx = 0.5 + 2.5 * strength * rng.uniform(0.5, 1.0)
    sy = 0.5 + 2.5 * strength * rng.uniform(0.3, 1.0)
    theta = rng.uniform(0, np.pi)
    r = int(np.ceil(3 * max(sx, sy)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    xr = xx * np.cos(theta) + yy * np.sin(theta)
    yr = -xx * np.sin(theta) + yy * np.cos(theta)
    k = np.exp(-0.5 * ((xr / sx) ** 2 + (yr / sy) ** 2))
    return k / k.sum()


def _motion_kernel(rng: np.random.Generator, strength: float) -> np.ndarray:
    length = max(3, int(round(3 + 10 * strength * rng.uniform(0.5, 1.0))))
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return k / max(float(k.sum()), 1e-6)


def _disk_kernel(rng: np.random.Generator, strength: float) -> np.ndarray:
    radius = 1.0 + 3.0 * strength * rng.uniform(0.5, 1.0)
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    return k / k.sum()


def random_blur(img: Image, rng: np.random.Generator, strength: float) -> tuple[Image, str]:
    """Blur with a random kernel: anisotropic Gaussian, motion streak or defocus disk."""
    kind = rng.choice(["gaussian", "motion", "disk"], p=[0.5, 0.25, 0.25])
    kernel = {"gaussian": _gaussian_kernel, "motion": _motion_kernel, "disk": _disk_kernel}[kind](rng, strength)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT), f"blur({kind},{kernel.shape[0]}px)"


def exposure(img: Image, rng: np.random.Generator, strength: float) -> tuple[Image, str]:
    """Under- or over-exposure: a gamma and gain change, as from a wrong technique factor."""
    under = rng.random() < 0.5
    gamma = 1.0 + (0.8 if under else -0.45) * strength * rng.uniform(0.5, 1.0)
    gain = 1.0 + (-0.25 if under else 0.25) * strength * rng.uniform(0.3, 1.0)
    out = np.power(np.clip(img, 0, 1), gamma) * gain
    return out, f"exposure({'under' if under else 'over'},gamma={gamma:.2f},gain={gain:.2f})"


def low_contrast(img: Image, rng: np.random.Generator, strength: float) -> tuple[Image, str]:
    """Compress the gray range toward a level, as with scatter or a flat processing curve."""
    factor = 1.0 - 0.6 * strength * rng.uniform(0.5, 1.0)
    level = float(np.clip(img.mean() + rng.uniform(-0.1, 0.1), 0.2, 0.8))
    return level + (img - level) * factor, f"contrast(x{factor:.2f})"


def saturation(img: Image, rng: np.random.Generator, strength: float) -> tuple[Image, str]:
    """Clip the darkest and/or brightest part of the range (detector or display saturation)."""
    lo = float(np.quantile(img, 0.06 * strength * rng.uniform(0.3, 1.0)))
    hi = float(np.quantile(img, 1.0 - 0.06 * strength * rng.uniform(0.3, 1.0)))
    if hi - lo < 0.05:
        return img, "saturation(skipped)"
    return (np.clip(img, lo, hi) - lo) / (hi - lo), f"saturation({lo:.2f}..{hi:.2f})"


def compression(img: Image, rng: np.random.Generator, strength: float) -> tuple[Image, str]:
    """JPEG round trip at a low quality, the artifact of images copied from papers and web pages."""
    quality = int(round(70 - 60 * strength * rng.uniform(0.5, 1.0)))
    ok, buf = cv2.imencode(".jpg", (np.clip(img, 0, 1) * 255).round().astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0, f"jpeg(q={quality})"


ARTIFACTS: dict[str, Callable[[Image, np.random.Generator, float], tuple[Image, str]]] = {
    "noise": spatial_noise,
    "blur": random_blur,
    "exposure": exposure,
    "contrast": low_contrast,
    "saturation": saturation,
    "jpeg": compression,
}
# Noise and compression happen last in a real chain (acquisition, then storage).
_ORDER_LATE = ("noise", "jpeg")


def degrade(
    image: Image,
    rng: np.random.Generator,
    severity: float | None = None,
    min_artifacts: int = 2,
    max_artifacts: int = 4,
) -> Degradation:
    """Apply a random blend of 2-4 artifacts with strengths around ``severity`` (0..1)."""
    img = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    severity = float(rng.uniform(0.3, 1.0)) if severity is None else float(severity)
    n = int(rng.integers(min_artifacts, max_artifacts + 1))
    chosen = list(rng.choice(list(ARTIFACTS), size=n, replace=False))
    early = [a for a in chosen if a not in _ORDER_LATE]
    rng.shuffle(early)
    late = [a for a in _ORDER_LATE if a in chosen]
    steps: list[str] = []
    for name in early + late:
        strength = float(np.clip(severity * rng.uniform(0.6, 1.2), 0.05, 1.0))
        img, what = ARTIFACTS[name](img, rng, strength)
        img = np.clip(img, 0.0, 1.0).astype(np.float32)
        steps.append(what)
    return Degradation(img, steps)

"""No-reference image-quality measures and full-reference PSNR/SSIM.

The no-reference measures rank real X-rays (noise, sharpness, contrast, clipping) so the
training domains can be built without anyone labelling quality. PSNR and SSIM measure
restoration where a clean reference exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

ANALYSIS_SIZE = 512  # measure on a common scale so images of different sizes compare


def _prepare(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float32)
    h, w = img.shape
    scale = ANALYSIS_SIZE / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return img


def noise_sigma(image: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (1996): a Laplacian-difference mask cancels structure."""
    img = _prepare(image).astype(np.float64)
    h, w = img.shape
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    response = cv2.filter2D(img, -1, mask, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2)))


def sharpness(image: np.ndarray) -> float:
    """Energy of the Laplacian after light denoising (so noise is not counted as detail).

    The mean gradient would not do: blurring a step edge spreads its gradient but keeps its
    sum, whereas second derivatives fall quickly with blur.
    """
    img = cv2.GaussianBlur(_prepare(image), (0, 0), 1.0)
    return float(np.sqrt(np.mean(cv2.Laplacian(img, cv2.CV_32F, ksize=3) ** 2)))


def contrast(image: np.ndarray) -> float:
    """Robust gray range: 99th minus 1st percentile."""
    lo, hi = np.percentile(_prepare(image), [1, 99])
    return float(hi - lo)


def clipping(image: np.ndarray) -> float:
    """Fraction of pixels stuck at black or white (saturated)."""
    img = _prepare(image)
    return float(np.mean((img <= 1 / 255) | (img >= 254 / 255)))


@dataclass
class QualityMeasures:
    noise: float
    sharpness: float
    contrast: float
    clipping: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def measure(image: np.ndarray) -> QualityMeasures:
    return QualityMeasures(noise_sigma(image), sharpness(image), contrast(image), clipping(image))


def quality_scores(measures: list[QualityMeasures]) -> np.ndarray:
    """Composite score per image (higher = better): sum of rank-normalised measures.

    Ranks rather than raw values, because the measures live on different scales and a few
    extreme images should not dominate.
    """
    def ranks(values: list[float]) -> np.ndarray:
        order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
        return order / max(len(values) - 1, 1)

    noise = ranks([m.noise for m in measures])
    sharp = ranks([m.sharpness for m in measures])
    cont = ranks([m.contrast for m in measures])
    clip = ranks([m.clipping for m in measures])
    return (1 - noise) + sharp + cont + (1 - clip) * 0.5


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB for images in [0, 1] (scikit-image)."""
    return float(peak_signal_noise_ratio(np.asarray(reference, np.float64), np.asarray(test, np.float64),
                                         data_range=1.0))


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """SSIM as Wang et al. (2004): Gaussian window sigma 1.5, data range 1 (scikit-image)."""
    return float(structural_similarity(np.asarray(reference, np.float64), np.asarray(test, np.float64),
                                       data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def periodic_energy(image: np.ndarray, periods: tuple[int, ...] = (2, 4)) -> float:
    """Spectral energy at the frequencies of a pattern repeating every 2 or 4 pixels.

    A stride-2 transposed convolution that has not learnt to hide its stride leaves a dot grid
    of period 2 (two of them in a row, period 4). Its spectrum has peaks at multiples of
    1/period cycles per pixel; natural films have little energy exactly there. The image is
    mean-removed and Hann-windowed (so edges do not leak along the axes), and the power of the
    3x3 bins around each peak (DC excluded) is summed.
    """
    img = np.asarray(image, np.float64)
    h, w = img.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2((img - img.mean()) * window)) ** 2
    rows = sorted({(h * k) // p % h for p in periods for k in range(p)})
    cols = sorted({(w * k) // p % w for p in periods for k in range(p)})
    total = 0.0
    for r in rows:
        for c in cols:
            if r == 0 and c == 0:
                continue
            ys = [(r + d) % h for d in (-1, 0, 1)]
            xs = [(c + d) % w for d in (-1, 0, 1)]
            total += float(power[np.ix_(ys, xs)].sum())
    return total


def checkerboard_ratio(output: np.ndarray, reference: np.ndarray) -> float:
    """Periodic (2- and 4-pixel) energy of ``output`` relative to ``reference`` (1.0: none added)."""
    return periodic_energy(output) / max(periodic_energy(reference), 1e-12)

"""The artifact blend and the quality measures that build the training domains."""

from __future__ import annotations

import numpy as np

from core.degrade import ARTIFACTS, degrade
from core.quality import clipping, contrast, measure, noise_sigma, psnr, quality_scores, sharpness, ssim
from tests.engine_helpers import chest_like


def test_degradation_is_reproducible_from_the_seed() -> None:
    img = chest_like(256, 256)
    a = degrade(img, np.random.default_rng(7))
    b = degrade(img, np.random.default_rng(7))
    c = degrade(img, np.random.default_rng(8))
    assert np.array_equal(a.image, b.image) and a.steps == b.steps
    assert not np.array_equal(a.image, c.image)
    assert 2 <= len(a.steps) <= 4
    assert a.image.dtype == np.float32 and a.image.min() >= 0 and a.image.max() <= 1


def test_every_artifact_changes_the_image_and_lowers_psnr() -> None:
    img = chest_like(256, 256)
    for name, fn in ARTIFACTS.items():
        out, what = fn(img, np.random.default_rng(1), 0.8)
        out = np.clip(out, 0, 1)
        assert psnr(img, out) < 45, name
        assert what.startswith(name.replace("jpeg", "jpeg")[:4]) or what, name


def test_measures_respond_to_the_artifacts_they_measure() -> None:
    img = chest_like(256, 256)
    rng = np.random.default_rng(0)
    noisy = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype(np.float32)
    assert noise_sigma(noisy) > 3 * noise_sigma(img)
    import cv2

    blurred = cv2.GaussianBlur(img, (0, 0), 3)
    assert sharpness(blurred) < 0.7 * sharpness(img)
    flat = (img - 0.5) * 0.3 + 0.5
    assert contrast(flat) < 0.4 * contrast(img)
    clipped = np.clip(img * 1.8, 0, 1)
    assert clipping(clipped) > clipping(img) + 0.1
    scores = quality_scores([measure(img), measure(noisy), measure(blurred), measure(flat)])
    assert scores[0] == scores.max()


def test_psnr_and_ssim_reference_values() -> None:
    img = chest_like(128, 128)
    assert ssim(img, img) == 1.0
    shifted = np.clip(img + 0.01, 0, 1)
    assert abs(psnr(img, img + 0.01) - 40.0) < 1e-4  # float32 rounding of the 0.01 offset
    assert 0.9 < ssim(img, shifted) < 1.0

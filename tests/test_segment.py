"""Lung segmentation: post-processing, area figures, weights handling, alignment with the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import WeightsError
from core.segment import LungSegmenter, clean_mask, lung_areas, overlay
from tests.engine_helpers import chest_like, make_generator_file, make_segmenter_file


def test_clean_mask_keeps_two_lungs_and_fills_holes() -> None:
    mask = np.zeros((100, 100), bool)
    mask[20:80, 10:40] = True  # lung 1 with a hole
    mask[40:50, 20:30] = False
    mask[20:80, 60:90] = True  # lung 2
    mask[5:8, 5:8] = True  # speckle
    mask[90:95, 45:55] = True  # a third, smaller blob
    out = clean_mask(mask)
    assert out[45, 25]  # hole filled
    assert not out[6, 6] and not out[92, 50]  # speckle and third blob dropped
    assert out.sum() == 60 * 30 * 2


def test_lung_areas_split_by_side_and_use_spacing() -> None:
    mask = np.zeros((100, 200), bool)
    mask[10:60, 20:60] = True  # image left: 2000 px
    mask[10:40, 120:170] = True  # image right: 1500 px
    a = lung_areas(mask, pixel_spacing=(0.5, 0.2))
    assert (a.total_px, a.image_left_px, a.image_right_px) == (3500, 2000, 1500)
    assert a.fraction == pytest.approx(3500 / 20000)
    assert a.total_mm2 == pytest.approx(3500 * 0.1)
    assert lung_areas(mask).total_mm2 is None


def test_without_trained_weights_the_error_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "none")
    with pytest.raises(WeightsError, match="no trained lung segmenter installed.*train-seg"):
        LungSegmenter(device="cpu")
    with pytest.raises(WeightsError, match="not the lung segmenter"):
        LungSegmenter(make_generator_file(tmp_path), device="cpu")


def test_mask_is_aligned_with_the_input_image(tmp_path: Path) -> None:
    seg = LungSegmenter(make_segmenter_file(tmp_path), device="cpu")
    image = chest_like(333, 251)
    result = seg.segment(image, pixel_spacing=(0.2, 0.2))
    assert result.mask.shape == image.shape and result.mask.dtype == bool
    assert result.probability.shape == image.shape
    assert result.areas.total_px == int(result.mask.sum())
    rgb = overlay(image, result.mask)
    assert rgb.shape == (333, 251, 3) and rgb.dtype == np.uint8


def test_flip_average_makes_the_mask_of_a_mirrored_film_the_mirrored_mask(tmp_path: Path) -> None:
    """The probability is the mean over the film and its mirror image, so mirroring the film
    mirrors the result exactly; without the average an untrained U-Net is not symmetric."""
    path = make_segmenter_file(tmp_path)
    image = chest_like(256, 256, seed=2)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    seg = LungSegmenter(path, device="cpu")
    assert seg.flip_average
    p, q = seg.probabilities([image, mirrored])
    np.testing.assert_allclose(q, p[:, ::-1], atol=1e-5)
    plain = LungSegmenter(path, device="cpu", flip_average=False)
    a, b = plain.probabilities([image, mirrored])
    assert np.abs(b - a[:, ::-1]).max() > 1e-3
    assert np.abs((a + plain.probabilities([mirrored])[0][:, ::-1]) / 2 - p).max() < 1e-5

"""Guided upsampling: a 256-px restoration carried to the film's own pixels, geometry kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.guided import guided_coefficients, guided_upsample, native_restoration, plain_upsample
from core.preprocess import to_square
from tests.engine_helpers import chest_like


def detailed_film(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A chest-like film with fine, sparse, high-contrast structure (vessel-like lines, small nodules)
    that 256 px cannot hold."""
    rng = np.random.default_rng(seed)
    film = chest_like(h, w, seed)
    for _ in range(25):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, [w, h, w, h]))
        cv2.line(film, (x0, y0), (x1, y1), float(rng.uniform(0.5, 0.9)), 1)
    for _ in range(40):
        cv2.circle(film, (int(rng.integers(w)), int(rng.integers(h))), 2, float(rng.uniform(0.6, 1.0)), -1)
    return np.clip(film, 0, 1).astype(np.float32)


def tone(x: np.ndarray) -> np.ndarray:
    """A stand-in 'restoration': a contrast-raising tone curve, the same at any resolution."""
    return np.clip(0.5 + 1.3 * (np.asarray(x, np.float32) - 0.5), 0, 1) ** 1.2


def test_output_has_the_films_size_and_carries_the_restorations_change() -> None:
    film = detailed_film(900, 700)
    restored = tone(to_square(film))
    out = native_restoration(film, restored)
    assert out.shape == film.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    truth = tone(film)  # what the restoration would be at full resolution
    guided_err = float(np.sqrt(np.mean((out - truth) ** 2)))
    plain_err = float(np.sqrt(np.mean((plain_upsample(restored, film.shape) - truth) ** 2)))
    assert guided_err < 0.6 * plain_err, (guided_err, plain_err)


def test_geometry_is_kept_on_a_non_square_film() -> None:
    """The 256-px grid is the film squeezed; coefficients go back over the pixels they came from."""
    h, w = 300, 800
    film = np.full((h, w), 0.3, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    film[(yy - 80) ** 2 + (xx - 620) ** 2 < 30**2] = 0.9  # a bright disk off-centre
    film[200:260, 100:160] = 0.05  # a dark square elsewhere
    out = native_restoration(film, 1.0 - to_square(film))  # an inverting 'restoration'
    assert out.shape == (h, w)
    np.testing.assert_allclose(out[80, 620], 0.1, atol=0.03)  # the disk, inverted, in place
    np.testing.assert_allclose(out[230, 130], 0.95, atol=0.03)  # the square, inverted, in place
    np.testing.assert_allclose(out[150, 400], 0.7, atol=0.03)  # background
    edge_film = np.abs(cv2.Sobel(film, cv2.CV_32F, 1, 0)) > 0.1
    edge_out = np.abs(cv2.Sobel(out, cv2.CV_32F, 1, 0)) > 0.1
    assert (edge_film & edge_out).sum() > 0.8 * edge_film.sum()  # edges where the film has them


def test_identity_restoration_keeps_the_film_better_than_plain_upsampling() -> None:
    film = detailed_film(640, 512, seed=2)
    low = to_square(film)
    out = guided_upsample(film, low, low)
    guided_err = float(np.abs(out - film).mean())
    plain_err = float(np.abs(plain_upsample(low, film.shape) - film).mean())
    assert guided_err < 0.5 * plain_err


def test_a_film_already_at_model_size_is_the_filter_itself() -> None:
    film = chest_like(256, 256)
    restored = tone(film)
    a, b = guided_coefficients(film, restored)
    np.testing.assert_allclose(guided_upsample(film, film, restored), np.clip(a * film + b, 0, 1), atol=1e-6)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="same shape"):
        guided_coefficients(np.zeros((8, 8), np.float32), np.zeros((8, 9), np.float32))
    with pytest.raises(ValueError, match="eps"):
        guided_coefficients(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), eps=0)
    with pytest.raises(ValueError, match="2-D"):
        guided_upsample(np.zeros((4, 4, 3), np.float32), np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))

"""The PyTorch port: architecture facts, TF padding semantics, the fused operational layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.models import build_discriminator, build_generator, parameter_count
from core.models.layers import OperationalConv2d, OperationalConvTranspose2d, tf_same_padding


@pytest.mark.parametrize(
    ("arch", "q", "params"),
    [  # the authors' Keras summaries (../shared/reference/r2c-gan/timing, summaries)
        ("operational", 1, 302_853),
        ("operational", 3, 906_507),
        ("operational", 5, 1_510_161),
        ("convolutional", None, 11_383_941),
        ("convolutional-light", None, 302_853),
    ],
)
def test_generator_parameter_counts_match_the_authors(arch: str, q: int | None, params: int) -> None:
    assert parameter_count(build_generator(arch, q)) == params


def test_discriminator_parameter_count_matches_opdiscriminator_q3() -> None:
    # 9408 + 393216 + 256 + 6147 from summaries/D_operational_q3.txt
    assert parameter_count(build_discriminator("operational", 3)) == 409_027


@pytest.mark.parametrize(("arch", "q"), [("operational", 3), ("convolutional-light", None), ("convolutional", None)])
def test_generator_outputs_image_and_softmax(arch: str, q: int | None) -> None:
    g = build_generator(arch, q).eval()
    with torch.no_grad():
        image, probs = g(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert image.shape == (2, 3, 64, 64)
    assert image.abs().max() <= 1.0
    assert probs.shape == (2, 2)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))


def test_discriminators_return_patch_maps() -> None:
    x = torch.rand(1, 3, 256, 256)
    for arch, q in (("operational", 1), ("convolutional", None), ("convolutional-light", None)):
        assert build_discriminator(arch, q)(x).shape == (1, 1, 32, 32)


@pytest.mark.parametrize(
    ("size", "k", "s", "expected"),
    [(256, 3, 2, (0, 1)), (128, 3, 2, (0, 1)), (256, 4, 2, (1, 1)), (128, 4, 4, (0, 0)), (32, 4, 1, (1, 2))],
)
def test_tf_same_padding_puts_the_odd_pixel_at_the_end(size: int, k: int, s: int, expected: tuple) -> None:
    assert tf_same_padding(size, k, s) == expected


def test_fused_operational_conv_equals_sum_of_q_convolutions() -> None:
    torch.manual_seed(0)
    layer = OperationalConv2d(4, 5, 3, stride=2, padding="same", q=3, bias=True)
    x = torch.randn(2, 4, 17, 16)
    w = layer.weight.view(5, 3, 4, 3, 3)
    padded = F.pad(x, (0, 1, 1, 1))  # TF same for 16 (k3 s2): (0, 1); for 17: total 2 -> (1, 1)
    expected = sum(F.conv2d(padded**(i + 1), w[:, i], layer.bias[i], stride=2) for i in range(3))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_transposed_operational_conv_keeps_the_first_2n_pixels() -> None:
    torch.manual_seed(0)
    layer = OperationalConvTranspose2d(3, 2, 3, stride=2, q=2, bias=True)
    x = torch.randn(1, 3, 8, 8)
    w = layer.weight.view(2, 3, 2, 3, 3)
    full = sum(F.conv_transpose2d(x**(i + 1), w[i], layer.bias[i], stride=2) for i in range(2))
    assert full.shape[-1] == 17
    torch.testing.assert_close(layer(x), full[..., :16, :16], rtol=1e-5, atol=1e-5)


def test_invalid_architecture_and_q_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_generator("resnet")
    with pytest.raises(ValueError, match="needs q"):
        build_generator("operational")
    with pytest.raises(ValueError, match="operational architecture only"):
        build_generator("convolutional", q=3)

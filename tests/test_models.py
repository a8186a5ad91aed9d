"""The PyTorch port: architecture facts, TF padding semantics, the fused operational layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.models import build_discriminator, build_generator, parameter_count
from core.models.layers import InstanceNorm, OperationalConv2d, OperationalConvTranspose2d, tf_same_padding


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


LAYOUTS = [torch.contiguous_format, torch.channels_last]


def _reference_conv(layer: OperationalConv2d, x: torch.Tensor, pad: tuple, mode: str) -> torch.Tensor:
    """The plain formulation: pad, then q convolutions of x^i summed."""
    x = F.pad(x, pad, mode=mode)
    w = layer.weight.view(layer.out_channels, layer.q, layer.in_channels, layer.kernel_size, layer.kernel_size)
    bias = [None] * layer.q if layer.bias is None else layer.bias
    return sum(F.conv2d(x ** (i + 1), w[:, i], bias[i], stride=layer.stride) for i in range(layer.q))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize(("cout", "k", "stride", "q", "reflect", "act"), [
    (5, 3, 1, 3, 1, "tanh"),  # powers built into one buffer, reflect padding and tanh fused
    (3, 7, 1, 1, 3, "relu"),  # 3 outputs: the GEMM-and-shifted-sums path (without autograd)
    (2, 3, 1, 2, 0, None),
    (6, 3, 2, 2, 0, "relu"),  # 'same' zero padding fused
])
def test_fast_operational_conv_paths_equal_the_plain_formulation(layout, grad, cout, k, stride, q, reflect,
                                                                 act) -> None:
    torch.manual_seed(0)
    layer = OperationalConv2d(4, cout, k, stride=stride, padding="same" if stride == 2 else "valid", q=q,
                              bias=True)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 11, 10).contiguous(memory_format=layout)
    a = x if act is None else (torch.tanh(x) if act == "tanh" else torch.relu(x))
    pad = (reflect,) * 4 if reflect else (0, 1, 1, 1) if stride == 2 else (0, 0, 0, 0)  # TF same 10, 11
    expected = _reference_conv(layer, a, pad, "reflect" if reflect else "constant")
    xin = x.clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        got = layer(xin, reflect=reflect, act=act)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)
    if grad:
        xr = x.clone().requires_grad_()
        ar = xr if act is None else (torch.tanh(xr) if act == "tanh" else torch.relu(xr))
        (_reference_conv(layer, ar, pad, "reflect" if reflect else "constant") ** 2).sum().backward()
        (got**2).sum().backward()
        torch.testing.assert_close(xin.grad, xr.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize(("cout", "q"), [(3, 3), (5, 1), (16, 2)])  # GEMM path, 2x2 phase conv, exact phases
def test_fast_transposed_paths_equal_the_cropped_transposed_convolution(layout, grad, cout, q) -> None:
    torch.manual_seed(0)
    layer = OperationalConvTranspose2d(4, cout, 3, stride=2, q=q, bias=True)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 9, 7).contiguous(memory_format=layout)
    w = layer.weight.view(q, 4, cout, 3, 3)
    expected = sum(F.conv_transpose2d(x ** (i + 1), w[i], layer.bias[i], stride=2) for i in range(q))[..., :18, :14]
    with torch.set_grad_enabled(grad):
        got = layer(x.clone().requires_grad_(grad))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("grad", [False, True])
def test_channels_last_instance_norm_equals_instance_norm(grad) -> None:
    torch.manual_seed(0)
    norm = InstanceNorm(6)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, 6, 9, 8) * 3 + 1
    expected = F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=1e-3)
    with torch.set_grad_enabled(grad):
        got = norm(x.contiguous(memory_format=torch.channels_last).requires_grad_(grad))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_invalid_architecture_and_q_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_generator("resnet")
    with pytest.raises(ValueError, match="needs q"):
        build_generator("operational")
    with pytest.raises(ValueError, match="operational architecture only"):
        build_generator("convolutional", q=3)

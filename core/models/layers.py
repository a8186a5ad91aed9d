"""Building blocks of the R2C-GAN family, with the authors' TensorFlow semantics.

The authors' Keras models use TensorFlow 'same' padding (the odd extra pixel goes at the
end), transposed convolutions cropped at the end, and tfa InstanceNormalization with
epsilon 1e-3. A port that uses PyTorch's symmetric defaults is off by one pixel and gives
visibly different images, so these layers spell the TF rules out.

A Self-ONN *operational* layer of Taylor order q computes ``sum_i conv_i(x**i)`` for
i = 1..q. Summing q convolutions equals one convolution over the channel-wise
concatenation ``[x, x**2, ..., x**q]`` with the q kernels concatenated on the input axis;
we compute it that way because one wide convolution is much faster than q narrow ones.
With q = 1 the layer is a plain convolution, which is how the CNN variants use it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Padding = Literal["same", "valid"]

IN_EPS = 1e-3  # tfa.layers.InstanceNormalization default


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF 'same' along one axis; the extra pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def powers(x: torch.Tensor, q: int) -> torch.Tensor:
    """Channel-wise concatenation [x, x^2, ..., x^q] (x itself when q == 1)."""
    if q == 1:
        return x
    terms = [x]
    for _ in range(q - 1):
        terms.append(terms[-1] * x)
    return torch.cat(terms, dim=1)


class OperationalConv2d(nn.Module):
    """Operational convolution of order q (q = 1: a plain convolution), TF padding rules.

    ``weight`` has shape (out, q*in, k, k): block i of the input axis holds the kernel of
    x^(i+1). ``bias``, when present, has shape (q, out): one per inner convolution, as in
    the authors' model, and the effective bias is their sum.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: Padding = "same",
        q: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if q < 1:
            raise ValueError(f"operational order q must be >= 1, got {q}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.q = kernel_size, stride, padding, q
        self.weight = nn.Parameter(torch.empty(out_channels, q * in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(q, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform per inner kernel and zero biases: the Keras defaults the authors trained from."""
        fan_in = self.in_channels * self.kernel_size**2
        fan_out = self.out_channels * self.kernel_size**2
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def effective_bias(self) -> torch.Tensor | None:
        return None if self.bias is None else self.bias.sum(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            top, bottom = tf_same_padding(x.shape[-2], self.kernel_size, self.stride)
            left, right = tf_same_padding(x.shape[-1], self.kernel_size, self.stride)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(powers(x, self.q), self.weight, self.effective_bias(), stride=self.stride)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
            f"{self.padding}, q={self.q}, bias={self.bias is not None}"
        )


class OperationalConvTranspose2d(nn.Module):
    """Operational transposed convolution of order q with TF 'same' output cropping.

    TF's 'same' transposed convolution returns ``in * stride`` pixels per axis: the full
    transposed convolution cropped by (k - s) // 2 at the start and the rest at the end.
    For k = 3, s = 2 that keeps ``[0:2*in]``; PyTorch's usual ``padding=1,
    output_padding=1`` keeps ``[1:2*in+1]`` instead, one pixel off.

    ``weight`` has shape (q*in, out, k, k) (PyTorch's transposed layout, inputs first).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 2,
        q: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.q = kernel_size, stride, q
        self.weight = nn.Parameter(torch.empty(q * in_channels, out_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(q, out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Keras counts a transposed kernel (k, k, out, in) with fan_in = k*k*out.
        fan_in = self.out_channels * self.kernel_size**2
        fan_out = self.in_channels * self.kernel_size**2
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.sum(dim=0)
        full = F.conv_transpose2d(powers(x, self.q), self.weight, bias, stride=self.stride)
        start = max(self.kernel_size - self.stride, 0) // 2
        h, w = x.shape[-2] * self.stride, x.shape[-1] * self.stride
        return full[..., start : start + h, start : start + w]

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
            f"q={self.q}, bias={self.bias is not None}"
        )


class InstanceNorm(nn.Module):
    """tfa InstanceNormalization: per-sample, per-channel, biased variance, eps 1e-3, affine."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=IN_EPS)


class ReflectPad(nn.Module):
    """``tf.pad(..., 'REFLECT')``: mirror without repeating the edge pixel."""

    def __init__(self, amount: int) -> None:
        super().__init__()
        self.amount = amount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.amount
        return F.pad(x, (a, a, a, a), mode="reflect")


class ClassHead(nn.Module):
    """Global spatial max pool, then a 2-way dense layer: the generators' COVID-19 head.

    Returns logits; the generators apply the softmax (the authors' Dense has it built in).
    """

    def __init__(self, channels: int, classes: int = 2) -> None:
        super().__init__()
        self.dense = nn.Linear(channels, classes)
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dense(torch.amax(features, dim=(2, 3)))

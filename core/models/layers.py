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

Speed (CPU; the generators feed these layers channels-last maps, oneDNN's fast layout): the
powers, the padding and the preceding activation are written into one preallocated buffer
(``operational_input``); stride-2 transposed convolutions run as ordinary convolutions over
their 4 output phases; layers with at most ``SMALL_OUT`` outputs (the image) run, without
autograd, as one GEMM plus shifted sums. Each path computes the same sums as the plain
formulation (tests/test_models.py checks them against it, both layouts, with and without
autograd), so the TF reference vectors still match.
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


def channels_last(x: torch.Tensor) -> bool:
    """True when x is a 4-D tensor laid out channels-last (NHWC) and not also plain NCHW."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def powers(x: torch.Tensor, q: int) -> torch.Tensor:
    """Channel-wise concatenation [x, x^2, ..., x^q] (x itself when q == 1), in x's layout."""
    return operational_input(x, q)


class _Powers(torch.autograd.Function):
    """[x, ..., x^q] in one buffer; backward by Horner: dx = sum_k k x^(k-1) g_k."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, q: int) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.q = q
        return _fill_powers(x, q, (0, 0, 0, 0), "constant")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        c, q = x.shape[1], ctx.q
        acc = grad[:, (q - 1) * c :] * q
        for k in range(q - 1, 0, -1):
            g = grad[:, (k - 1) * c : k * c]
            acc = torch.addcmul(g if k == 1 else g * k, x, acc)
        return acc, None


def _fill_powers(x: torch.Tensor, q: int, pad: tuple[int, int, int, int], mode: str,
                 act: str | None = None) -> torch.Tensor:
    """One new tensor holding pad([a, a^2, ..., a^q]), a = act(x) (pad = left, right, top, bottom), no autograd.

    Writing each power straight into its slice of one buffer, padding included, replaces the
    pad copy, the q-1 temporaries and the concatenation copy of the plain formulation.
    """
    n, c, h, w = x.shape
    left, right, top, bottom = pad
    fmt = torch.channels_last if channels_last(x) else torch.contiguous_format
    out = torch.empty((n, q * c, h + top + bottom, w + left + right), dtype=x.dtype, device=x.device,
                      memory_format=fmt)
    inner = out[:, :, top : top + h, left : left + w]
    prev = inner[:, :c]
    if act == "tanh":
        torch.tanh(x, out=prev)
    elif act == "relu":
        torch.clamp_min(x, 0.0, out=prev)
    else:
        prev.copy_(x)
    first = inner[:, :c]
    for i in range(1, q):
        cur = inner[:, i * c : (i + 1) * c]
        torch.mul(prev, x if act is None else first, out=cur)
        prev = cur
    if mode == "reflect":  # pad(x)^k == pad(x^k): mirror the whole buffer's border at once
        for j in range(top):
            out[:, :, top - 1 - j, left : left + w] = out[:, :, top + 1 + j, left : left + w]
        for j in range(bottom):
            out[:, :, top + h + j, left : left + w] = out[:, :, top + h - 2 - j, left : left + w]
        for j in range(left):
            out[:, :, :, left - 1 - j] = out[:, :, :, left + 1 + j]
        for j in range(right):
            out[:, :, :, left + w + j] = out[:, :, :, left + w - 2 - j]
    else:  # zeros: 0^k == 0
        if top:
            out[:, :, :top].zero_()
        if bottom:
            out[:, :, top + h :].zero_()
        if left:
            out[:, :, top : top + h, :left].zero_()
        if right:
            out[:, :, top : top + h, left + w :].zero_()
    return out


def operational_input(x: torch.Tensor, q: int, pad: tuple[int, int, int, int] = (0, 0, 0, 0),
                      mode: str = "constant", act: str | None = None) -> torch.Tensor:
    """pad([a, a^2, ..., a^q]) along channels, a = act(x) (None, "tanh" or "relu"; pad = left,
    right, top, bottom; constant = zeros).

    Without autograd (inference, or an input that needs no gradient) it is built in one
    preallocated buffer; with autograd the pad is F.pad and the powers a custom function whose
    backward is one Horner pass.
    """
    if mode == "reflect" and any(p >= s for p, s in zip(pad, (x.shape[-1],) * 2 + (x.shape[-2],) * 2, strict=True)):
        raise ValueError("reflect padding must be smaller than the input")
    if act is not None and (q == 1 and not any(pad) or torch.is_grad_enabled() and x.requires_grad):
        x, act = (torch.tanh(x) if act == "tanh" else torch.relu(x)), None
    if torch.is_grad_enabled() and x.requires_grad:
        if any(pad):
            x = F.pad(x, pad, mode=mode)
        return x if q == 1 else _Powers.apply(x, q)
    if q == 1 and not any(pad):
        return x
    return _fill_powers(x, q, pad, mode, act)


SMALL_OUT = 4  # at most this many output channels: the per-tap GEMM path below (inference)


def _needs_grad(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)


def _tap_planes(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(T, H, W) planes ``taps @ x`` of one sample x (C, H, W) for taps (T, C): one GEMM."""
    c, h, w = x.shape
    if x.is_contiguous():
        return (taps @ x.reshape(c, h * w)).view(-1, h, w)
    return (taps @ x.permute(1, 2, 0).reshape(h * w, c).T).view(-1, h, w)


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

    def forward(self, x: torch.Tensor, reflect: int = 0, act: str | None = None) -> torch.Tensor:
        """The layer on act(x) (act: None, "tanh" or "relu"); ``reflect=a`` first mirror-pads by a
        pixels (``ReflectPad(a)``). Both are fused into the building of the layer's input."""
        if reflect:
            pad, mode = (reflect,) * 4, "reflect"
            h, w = x.shape[-2] + 2 * reflect, x.shape[-1] + 2 * reflect
        else:
            pad, mode, (h, w) = (0, 0, 0, 0), "constant", x.shape[-2:]
        if self.padding == "same":
            top, bottom = tf_same_padding(h, self.kernel_size, self.stride)
            left, right = tf_same_padding(w, self.kernel_size, self.stride)
            if top or bottom or left or right:
                if reflect:
                    x, act = operational_input(x, 1, pad, mode, act), None
                pad, mode = (left, right, top, bottom), "constant"
        inp = operational_input(x, self.q, pad, mode, act)
        if self.out_channels <= SMALL_OUT and self.stride == 1 and not _needs_grad(inp, self.weight):
            return self._forward_small_out(inp)
        return F.conv2d(inp, self.weight, self.effective_bias(), stride=self.stride)

    def _forward_small_out(self, x: torch.Tensor) -> torch.Tensor:
        """Stride 1, few outputs (an image): one GEMM gives a plane per (tap, output), summed shifted.

        oneDNN vectorises over output channels, so with 3 of them its convolution runs far below
        the GEMM rate; here the GEMM has k*k*out rows and the k*k shifted sums are contiguous rows.
        """
        out_ch, k = self.out_channels, self.kernel_size
        ho, wo = x.shape[-2] - k + 1, x.shape[-1] - k + 1
        taps = self.weight.permute(2, 3, 0, 1).reshape(k * k * out_ch, -1)  # rows (ky, kx, o)
        bias = self.effective_bias()
        ys = []
        for xi in x:
            z = _tap_planes(xi, taps).view(k, k, out_ch, x.shape[-2], x.shape[-1])
            y = z[0, 0, :, :ho, :wo].clone() if bias is None else z[0, 0, :, :ho, :wo] + bias.view(-1, 1, 1)
            for ky in range(k):
                for kx in range(k):
                    if ky or kx:
                        y += z[ky, kx, :, ky : ky + ho, kx : kx + wo]
            ys.append(y)
        return torch.stack(ys)

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
        if self.kernel_size == 3 and self.stride == 2:
            if self.out_channels <= SMALL_OUT and not _needs_grad(x, self.weight):
                return self._forward_small_out(operational_input(x, self.q), bias)
            if self.out_channels >= 16:
                return self._forward_exact_phases(x, bias)
            return self._forward_phases(x, bias)
        full = F.conv_transpose2d(powers(x, self.q), self.weight, bias, stride=self.stride)
        start = max(self.kernel_size - self.stride, 0) // 2
        h, w = x.shape[-2] * self.stride, x.shape[-1] * self.stride
        return full[..., start : start + h, start : start + w]

    def _forward_small_out(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """k = 3, s = 2, few outputs: one GEMM gives a plane per (tap, output), added at stride 2.

        Tap (ky, kx) of input pixel (i, j) lands on output pixel (2i + ky, 2j + kx); the crop
        keeps the first 2H x 2W, which drops the last input row (column) of tap row (column) 2.
        """
        h, w, out_ch = x.shape[-2], x.shape[-1], self.out_channels
        taps = self.weight.permute(2, 3, 1, 0).reshape(9 * out_ch, -1)  # rows (ky, kx, o)
        ys = []
        for xi in x:
            z = _tap_planes(xi, taps).view(3, 3, out_ch, h, w)
            y = x.new_zeros(out_ch, 2 * h, 2 * w) if bias is None else bias.view(-1, 1, 1).repeat(1, 2 * h, 2 * w)
            for ky in range(3):
                for kx in range(3):
                    nh, nw = h - ky // 2, w - kx // 2
                    y[:, ky::2, kx::2] += z[ky, kx, :, :nh, :nw]
            ys.append(y)
        return torch.stack(ys)

    def _forward_exact_phases(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """k = 3, s = 2, many outputs: each of the 4 phases as its own convolution with only its
        taps (2x2, 2x1, 1x2, 1x1: the 9 taps once, unlike the 2x2 form of ``_forward_phases``),
        written into its positions of the output. Phase rows a = 0 read input rows (p - 1, p)
        with kernel rows (2, 0), a = 1 row p with kernel row 1; columns alike."""
        n, _, h, w = x.shape
        xp = operational_input(x, self.q, (1, 0, 1, 0))
        kern = self.weight.transpose(0, 1)  # (out, q*in, k, k)
        taps = ([2, 0], [1])
        cl = channels_last(xp)
        out = xp.new_empty((n, 2 * h, 2 * w, self.out_channels) if cl else (n, self.out_channels, 2 * h, 2 * w))
        grid = out.view(n, h, 2, w, 2, -1) if cl else out.view(n, -1, h, 2, w, 2)
        for a in range(2):
            for b in range(2):
                k = kern[:, :, taps[a]][:, :, :, taps[b]]
                y = F.conv2d(xp[:, :, a:, b:], k, bias)
                if cl:
                    grid[:, :, a, :, b, :] = y.permute(0, 2, 3, 1)
                else:
                    grid[:, :, :, a, :, b] = y
        return out.permute(0, 3, 1, 2) if cl else out

    def _forward_phases(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """k = 3, s = 2 as one ordinary 2x2 convolution giving the 4 output phases, interleaved.

        Output pixel (2p + a, 2r + b) of the cropped transposed convolution takes kernel row 2
        from input row p - 1 and row 0 from row p when a = 0, and row 1 from row p when a = 1
        (columns alike). So a 2x2 convolution over the input padded by one zero row and column
        at the start, with 4*out output channels holding the rearranged taps, computes every
        phase; interleaving them is a copy. The same sums as the transposed convolution, without
        its slow CPU path, the wasted last row and column, and the crop.
        """
        n, _, h, w = x.shape
        out_ch = self.out_channels
        kern = self.weight
        kern = F.pad(kern, (0, 1, 0, 1))  # tap index 3 reads zero
        idx = torch.tensor([[2, 0], [3, 1]], device=kern.device)
        kern = kern[:, :, idx[:, None, :, None], idx[None, :, None, :]]  # (in, out, a, b, ky, kx)
        kern = kern.permute(2, 3, 1, 0, 4, 5).reshape(4 * out_ch, kern.shape[0], 2, 2)  # (a, b, o)
        y = F.conv2d(operational_input(x, self.q, (1, 0, 1, 0)), kern, None if bias is None else bias.repeat(4))
        if channels_last(y):
            y = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, out_ch).permute(0, 1, 3, 2, 4, 5)
            return y.reshape(n, 2 * h, 2 * w, out_ch).permute(0, 3, 1, 2)
        y = y.view(n, 2, 2, out_ch, h, w).permute(0, 3, 4, 1, 5, 2)
        return y.reshape(n, out_ch, 2 * h, 2 * w)

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
        if not channels_last(x):
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=IN_EPS)
        # Channels-last (F.instance_norm would make an NCHW copy first). Without autograd:
        # group norm with one channel per group is instance norm, and has a channels-last kernel.
        if not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)):
            return F.group_norm(x, x.shape[1], self.weight, self.bias, IN_EPS)
        # With autograd: each sample is a (pixels x channels) matrix whose per-channel batch norm
        # is its instance norm; this one has the faster backward.
        n, c, h, w = x.shape
        out = [F.batch_norm(r.reshape(h * w, c), None, None, self.weight, self.bias, True, 0.0, IN_EPS)
               for r in x.permute(0, 2, 3, 1).unbind(0)]
        y = out[0].view(1, h, w, c) if n == 1 else torch.stack(out).view(n, h, w, c)
        return y.permute(0, 3, 1, 2)


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

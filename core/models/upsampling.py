"""Checkerboard-free transposed convolutions by construction.

A stride-s transposed convolution computes each output pixel from a different subset of its
kernel taps depending on the pixel's position modulo s (its *phase*). When the tap sums of the
phases differ, even a flat feature map comes out as a dot grid of period s: the checkerboard
of Odena et al. (2016), which a short training run leaves in every R2C-GAN generator (and
which lets a reader tell a restored film from the original at a glance).

``balance_phases`` projects a transposed convolution's weights onto the set where every phase
has the same tap sum for every (input, output) channel pair: the smallest change (each tap of
a phase moves by the same amount) that makes a constant input give a constant output. The
architecture and the authors' layer are unchanged; the bundled recipe applies the projection
after every optimiser step (``core/train/paired.py``, ``core/train/gan.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from core.models.layers import OperationalConvTranspose2d


def _phases(kernel: int, stride: int, start: int) -> list[list[int]]:
    """Tap indices per output phase along one axis: output o = stride*i + t - start."""
    groups: list[list[int]] = [[] for _ in range(stride)]
    for t in range(kernel):
        groups[(t - start) % stride].append(t)
    return [g for g in groups if g]


def transposed_layers(model: nn.Module) -> list[tuple[nn.Module, int, int]]:
    """(layer, stride, crop start) of every stride > 1 transposed convolution in ``model``."""
    found = []
    for m in model.modules():
        if isinstance(m, OperationalConvTranspose2d) and m.stride > 1:
            found.append((m, m.stride, max(m.kernel_size - m.stride, 0) // 2))
        elif isinstance(m, nn.ConvTranspose2d) and m.stride[0] > 1:
            found.append((m, m.stride[0], m.padding[0]))
    return found


@torch.no_grad()
def balance_phases(weight: torch.Tensor, stride: int, start: int) -> None:
    """In place: equal tap sums over the stride**2 phases of a (in, out, k, k) transposed kernel."""
    groups = _phases(weight.shape[-1], stride, start)
    cells = [(rows, cols) for rows in groups for cols in groups]
    sums = [weight[:, :, rows][:, :, :, cols].sum(dim=(2, 3)) for rows, cols in cells]
    target = torch.stack(sums).mean(dim=0)
    for (rows, cols), s in zip(cells, sums, strict=True):
        delta = (target - s) / (len(rows) * len(cols))
        for r in rows:
            weight[:, :, r, cols] += delta[:, :, None]


def balance_model(model: nn.Module) -> None:
    """Project every strided transposed convolution of ``model`` (see the module docstring)."""
    for layer, stride, start in transposed_layers(model):
        balance_phases(layer.weight, stride, start)

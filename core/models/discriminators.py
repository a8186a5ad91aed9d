"""PatchGAN discriminators of the R2C-GAN family (needed for training only).

Each maps a 256x256 image to a 32x32 map of real/fake scores (least-squares GAN targets).
Layer order follows the authors' Keras models so their checkpoints import directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.models.layers import InstanceNorm, OperationalConv2d

LEAK = 0.2


class PatchDiscriminator(nn.Module):
    """conv(s2)+lrelu, then [conv + IN + lrelu] x n, then a 1-channel conv (k4 throughout).

    ``strides`` are those of the middle layers; ``final_leaky`` adds the leaky ReLU that ends
    the operational discriminator.
    """

    def __init__(
        self,
        widths: tuple[int, ...],
        strides: tuple[int, ...],
        q: int = 1,
        final_leaky: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.final_leaky = final_leaky
        self.first = OperationalConv2d(in_channels, widths[0], 4, stride=2, q=q, bias=True)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for cin, cout, s in zip(widths[:-1], widths[1:], strides, strict=True):
            self.convs.append(OperationalConv2d(cin, cout, 4, stride=s, q=q))
            self.norms.append(InstanceNorm(cout))
        self.last = OperationalConv2d(widths[-1], 1, 4, stride=1, q=q, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's activation, the score map last (feature matching compares the others)."""
        h = F.leaky_relu(self.first(x), LEAK)
        feats = [h]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = F.leaky_relu(norm(conv(h)), LEAK)
            feats.append(h)
        out = self.last(h)
        feats.append(F.leaky_relu(out, LEAK) if self.final_leaky else out)
        return feats

    def tf_weight_layers(self) -> list[nn.Module]:
        layers: list[nn.Module] = [self.first]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            layers += [conv, norm]
        return layers + [self.last]


def operational_discriminator(q: int) -> PatchDiscriminator:
    """OpDiscriminator(q): 64 (s2) -> 128 (s4) -> 1, ending in a leaky ReLU."""
    return PatchDiscriminator((64, 128), (4,), q=q, final_leaky=True)


def conv_discriminator() -> PatchDiscriminator:
    """ConvDiscriminator: 64 (s2) -> 128 (s2) -> 256 (s2) -> 512 (s1) -> 1."""
    return PatchDiscriminator((64, 128, 256, 512), (2, 2, 1))


def conv_light_discriminator() -> PatchDiscriminator:
    """ConvCompDiscriminator: 64 (s2) -> 128 (s4) -> 1."""
    return PatchDiscriminator((64, 128), (4,))

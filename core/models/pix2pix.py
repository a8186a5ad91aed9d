"""pix2pix for synthetic COVID-19 films (Liang et al., IEEE BIBM 2020; Isola et al. 2017).

Generator: the project's U-Net (``core/models/unet.py``, shared with the Task-GAN variant and
left unchanged there): encoder blocks Conv(4, stride 2) + BatchNorm + LeakyReLU(0.2), decoder
blocks ConvTranspose(4, stride 2) + BatchNorm + Dropout on the first three + ReLU, skip
connections between mirrored blocks, tanh out. Input and output 224x224x3 as in the paper
(a gray film repeated on three channels); depth 5 halves 224 to a 7x7 bottleneck.

Discriminator: the 70x70 PatchGAN of pix2pix, conditional: it reads the (input, output) pair
stacked on the channel axis (6 channels): C64 (no norm) - C128 - C256 - C512 (stride 1) - 1,
4x4 kernels, BatchNorm and LeakyReLU(0.2), one logit per patch.

Neither model is used to restore films: a ``synthesizer`` model file is never offered as a
restoration variant (its kind is checked where it is loaded).
"""

from __future__ import annotations

import torch
from torch import nn

from core.models.unet import UNetGenerator

SYNTH_ID = "pix2pix-covid"  # model id of the shipped synthesizer (resources/models/pix2pix-covid.safetensors)
SYNTH_ARCH = "pix2pix-unet"
IMAGE_SIZE = 224  # the paper's input and output size
BASE, DEPTH, DROPOUT = 64, 5, 0.5
LEAK = 0.2


def build_pix2pix_generator(base: int = BASE, depth: int = DEPTH, dropout: float = DROPOUT) -> UNetGenerator:
    return UNetGenerator(in_channels=3, out_channels=3, base=base, depth=depth, dropout=dropout)


class ConditionalPatchDiscriminator(nn.Module):
    """70x70 PatchGAN on (condition, image) pairs: logits, one per overlapping patch."""

    def __init__(self, in_channels: int = 6, widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            stride = 1 if i == len(widths) - 1 else 2
            layers.append(nn.Conv2d(cin, w, 4, stride=stride, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(LEAK))
            cin = w
        layers.append(nn.Conv2d(cin, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))


def init_weights(model: nn.Module) -> None:
    """pix2pix initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02), biases 0."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def inference_mode(G: nn.Module) -> nn.Module:
    """pix2pix normalises with each image's own statistics at test time too (trained at batch 1):
    BatchNorm in training mode with momentum 0 (running statistics untouched), dropout off."""
    G.eval()
    for m in G.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()
            m.momentum = 0.0
    return G

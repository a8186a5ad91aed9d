"""The U-Net generator of pix2pix (Isola et al. 2017) and the Task-GAN restoration variant.

U-Net as the pix2pix and Task-GAN papers describe it: encoder blocks Conv(4, stride 2) +
BatchNorm + LeakyReLU(0.2) (no norm on the first), decoder blocks ConvTranspose(4, stride 2)
+ BatchNorm + Dropout (first three, optional) + ReLU, a skip connection between mirrored
blocks, tanh out. ``depth`` sets how many times the input is halved, so any size divisible
by ``2**depth`` works (224 with depth 5, 256 and 128-px training patches alike).

``TaskGANGenerator`` pairs that U-Net with the *task network* of Task-GAN (Ouyang et al.
2019): a small COVID-19 vs control classifier that reads the restored film. Its prediction
is the variant's class probability, so the app shows it where the R2C-GAN heads' would be.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.models.generators import R2CGenerator

LEAK = 0.2


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``depth`` down blocks of widths base*(1, 2, 4, 8, 8, ...), mirrored up blocks."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, base: int = 32, depth: int = 5,
                 dropout: float = 0.0) -> None:
        super().__init__()
        widths = [base * min(2**i, 8) for i in range(depth)]
        self.depth = depth
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            cin = in_channels if i == 0 else widths[i - 1]
            layers: list[nn.Module] = [nn.Conv2d(cin, w, 4, stride=2, padding=1, bias=i == 0)]
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(w))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for j, i in enumerate(range(depth - 1, 0, -1)):
            cin = widths[i] if i == depth - 1 else widths[i] * 2
            layers = [nn.ConvTranspose2d(cin, widths[i - 1], 4, stride=2, padding=1, bias=False),
                      nn.BatchNorm2d(widths[i - 1])]
            if dropout and j < 3:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.out = nn.ConvTranspose2d(widths[0] * 2, out_channels, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(f"U-Net of depth {self.depth} needs sides divisible by {2**self.depth}, "
                             f"got {tuple(x.shape[-2:])}")
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else F.leaky_relu(h, LEAK))
            skips.append(h)
        for j, block in enumerate(self.up):
            inp = h if j == 0 else torch.cat([h, skips[-1 - j]], dim=1)
            h = block(F.relu(inp))
        return torch.tanh(self.out(F.relu(torch.cat([h, skips[0]], dim=1))))


class TaskClassifier(nn.Module):
    """Task network: five stride-2 conv blocks (16..128 channels), global average pool, 2 logits."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(cin, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x).mean(dim=(2, 3))))


class TaskGANGenerator(R2CGenerator):
    """Task-GAN restoration: U-Net image, class logits from the task network on the restored image."""

    classifies_output = True  # ResidualRestorer asks the task network about the final image

    def __init__(self, base: int = 32, depth: int = 5) -> None:
        super().__init__()
        self.unet = UNetGenerator(base=base, depth=depth)
        self.task = TaskClassifier()

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.unet(x)
        return image, self.task(image)

    def raw_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        return self.task(image)

    def output_layer(self) -> nn.Module:
        return self.unet.out

    def tf_weight_layers(self) -> list[nn.Module]:
        raise NotImplementedError("Task-GAN has no TensorFlow checkpoint to import")


def task_gan_discriminator() -> nn.Module:
    """Conditional PatchGAN on (input, output) pairs, as pix2pix and Task-GAN use."""
    from core.models.discriminators import PatchDiscriminator

    return PatchDiscriminator((64, 128, 256), (2, 2), in_channels=6)

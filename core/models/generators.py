"""The R2C-GAN generators: restore an image and classify it (control vs COVID-19) in one pass.

Two families, as in the paper's Fig. 3 and the authors' ``module.py``:

* ``CompactGenerator``: one stride-2 layer down to 128x128x128, one residual block, one
  stride-2 transposed layer back. With operational layers of order q and tanh it is
  "R2C-GAN (Q=q)"; with plain convolutions (q = 1) and ReLU it is "R2C-GAN (CNN*)".
* ``DeepGenerator``: the CycleGAN ResNet generator (9 residual blocks), "R2C-GAN (CNN)".

Both return ``(image, probs)``: the image in [-1, 1], same shape as the input, and a
softmax over (control, COVID-19). ``forward_logits`` returns the pre-softmax logits,
which training needs for a numerically stable cross-entropy.

``tf_weight_layers()`` lists the weighted sub-layers in the order of the authors' Keras
``model.layers`` (the N of ``layer_with_weights-N`` in their checkpoints); the importer
relies on it.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models.layers import (
    ClassHead,
    InstanceNorm,
    OperationalConv2d,
    OperationalConvTranspose2d,
    ReflectPad,
)


class R2CGenerator(nn.Module):
    """Common interface: ``(image, probs) = g(x)`` for x of shape N x 3 x H x W in [-1, 1]."""

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, logits = self.forward_logits(x)
        return image, torch.softmax(logits, dim=1)

    def tf_weight_layers(self) -> list[nn.Module]:
        raise NotImplementedError

    def output_layer(self) -> nn.Module:
        """The layer whose output the final tanh turns into the image (zeroed to start from identity)."""
        raise NotImplementedError


class CompactResidualBlock(nn.Module):
    """The compact generators' single residual block, with both of the authors' wirings.

    Operational (tanh): the branch reads tanh(h), the skip adds the pre-activation h, and a
    tanh follows the sum. CNN* (ReLU): the input is already relu(h), the skip adds it, and
    nothing follows the sum.
    """

    def __init__(self, channels: int, q: int, activation: str) -> None:
        super().__init__()
        self.activation = activation
        self.pad = ReflectPad(1)
        self.conv1 = OperationalConv2d(channels, channels, 3, padding="valid", q=q)
        self.norm1 = InstanceNorm(channels)
        self.conv2 = OperationalConv2d(channels, channels, 3, padding="valid", q=q)
        self.norm2 = InstanceNorm(channels)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) if self.activation == "tanh" else torch.relu(x)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.pad.amount
        # act(...) is applied by the next convolution as it builds its input (no extra copy)
        r = self.norm1(self.conv1(h, reflect=a, act="tanh" if self.activation == "tanh" else None))
        r = self.norm2(self.conv2(r, reflect=a, act=self.activation))
        out = h + r
        return torch.tanh(out) if self.activation == "tanh" else out


class CompactGenerator(R2CGenerator):
    """R2C-GAN (Q=q) with ``activation="tanh"``; R2C-GAN (CNN*) with q=1, ``activation="relu"``."""

    def __init__(self, q: int = 3, activation: str = "tanh", channels: int = 128) -> None:
        super().__init__()
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        self.q, self.activation = q, activation
        self.down = OperationalConv2d(3, channels, 3, stride=2, padding="same", q=q)
        self.down_norm = InstanceNorm(channels)
        self.block = CompactResidualBlock(channels, q, activation)
        self.up = OperationalConvTranspose2d(channels, 3, 3, stride=2, q=q, bias=True)
        self.head = ClassHead(channels)

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.down_norm(self.down(x.contiguous(memory_format=torch.channels_last)))
        if self.activation == "relu":
            h = torch.relu(h)
        features = self.block(h)
        return torch.tanh(self.up(features)).contiguous(), self.head(features)

    def tf_weight_layers(self) -> list[nn.Module]:
        b = self.block
        return [self.down, self.down_norm, b.conv1, b.norm1, b.conv2, b.norm2, self.up, self.head.dense]

    def output_layer(self) -> nn.Module:
        return self.up


class DeepResidualBlock(nn.Module):
    """CycleGAN ResNet block: pad-conv-IN-ReLU-pad-conv-IN, plus the input; no activation after."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = ReflectPad(1)
        self.conv1 = OperationalConv2d(channels, channels, 3, padding="valid")
        self.norm1 = InstanceNorm(channels)
        self.conv2 = OperationalConv2d(channels, channels, 3, padding="valid")
        self.norm2 = InstanceNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.norm1(self.conv1(x, reflect=self.pad.amount))
        return x + self.norm2(self.conv2(r, reflect=self.pad.amount, act="relu"))


class DeepGenerator(R2CGenerator):
    """R2C-GAN (CNN): ResNet generator, 9 blocks, class head on the output of block 5 (index 4)."""

    def __init__(self, blocks: int = 9, head_after_block: int = 4, base: int = 64) -> None:
        super().__init__()
        self.head_after_block = head_after_block
        self.stem_pad = ReflectPad(3)
        self.stem = OperationalConv2d(3, base, 7, padding="valid")
        self.stem_norm = InstanceNorm(base)
        self.down1 = OperationalConv2d(base, base * 2, 3, stride=2, padding="same")
        self.down1_norm = InstanceNorm(base * 2)
        self.down2 = OperationalConv2d(base * 2, base * 4, 3, stride=2, padding="same")
        self.down2_norm = InstanceNorm(base * 4)
        self.blocks = nn.ModuleList(DeepResidualBlock(base * 4) for _ in range(blocks))
        self.up1 = OperationalConvTranspose2d(base * 4, base * 2, 3, stride=2)
        self.up1_norm = InstanceNorm(base * 2)
        self.up2 = OperationalConvTranspose2d(base * 2, base, 3, stride=2)
        self.up2_norm = InstanceNorm(base)
        self.out_pad = ReflectPad(3)
        self.out = OperationalConv2d(base, 3, 7, padding="valid", bias=True)
        self.head = ClassHead(base * 4)

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.stem_norm(self.stem(x, reflect=self.stem_pad.amount))
        h = torch.relu(self.down1_norm(self.down1(h, act="relu")))
        h = torch.relu(self.down2_norm(self.down2(h)))
        logits = None
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == self.head_after_block:
                logits = self.head(h)
        h = torch.relu(self.up1_norm(self.up1(h)))
        h = self.up2_norm(self.up2(h))
        image = torch.tanh(self.out(h, reflect=self.out_pad.amount, act="relu")).contiguous()
        assert logits is not None
        return image, logits

    def tf_weight_layers(self) -> list[nn.Module]:
        layers: list[nn.Module] = [
            self.stem, self.stem_norm, self.down1, self.down1_norm, self.down2, self.down2_norm,
        ]
        for b in self.blocks:
            layers += [b.conv1, b.norm1, b.conv2, b.norm2]
        layers += [self.up1, self.up1_norm, self.up2, self.up2_norm, self.out, self.head.dense]
        return layers

    def output_layer(self) -> nn.Module:
        return self.out

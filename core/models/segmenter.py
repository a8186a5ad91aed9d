"""The lung segmenter: a U-Net with a DenseNet-121 encoder (segmentation-models-pytorch).

The paper's segmenter was ImageNet-initialised; we never download weights at run time, so
the encoder starts from scratch (``encoder_weights=None``) and our trained weights are
loaded from a model file. Input: one grayscale channel, standardised per image.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

SEGMENTER_ARCH = "unet-densenet121"
SEGMENTER_INPUT = 256


def build_segmenter(classes: int = 1) -> nn.Module:
    """The shipped segmenter has one output (lung fields, heart excluded); training may add a
    second for masks drawn in another convention (see ``core.train.seg``)."""
    return smp.Unet("densenet121", encoder_weights=None, in_channels=1, classes=classes)


def head_keys(state: dict) -> list[str]:
    """The keys of the output convolution, the only tensors whose shape depends on ``classes``."""
    return [k for k in state if k.startswith("segmentation_head.")]

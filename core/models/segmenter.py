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


def build_segmenter() -> nn.Module:
    return smp.Unet("densenet121", encoder_weights=None, in_channels=1, classes=1)

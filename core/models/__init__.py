"""The model family: R2C-GAN generators and discriminators, and the lung segmenter.

Architectures are named as in the authors' code (``--method``): ``operational`` (with
Taylor order q), ``convolutional`` (deep CNN) and ``convolutional-light`` (compact CNN*).
"""

from __future__ import annotations

from torch import nn

from core.models.discriminators import (
    PatchDiscriminator,
    conv_discriminator,
    conv_light_discriminator,
    operational_discriminator,
)
from core.models.generators import CompactGenerator, DeepGenerator, R2CGenerator
from core.models.residual import (
    OUTPUT_MODES,
    ResidualRestorer,
    ToneCurve,
    call_generator,
    file_state,
    split_file_state,
    wrap_output,
)
from core.models.runtime import keep_freed_memory
from core.models.unet import TaskGANGenerator, UNetGenerator, task_gan_discriminator

keep_freed_memory()  # no page faults per pass: see core/models/runtime.py

ARCHITECTURES = ("operational", "convolutional", "convolutional-light", "task-unet")
SUPPORTED_Q = (1, 3, 5)


def check_arch(arch: str, q: int | None) -> int | None:
    """Validate an (arch, q) pair; returns q (None for the CNN variants)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    if arch == "operational":
        if q is None:
            raise ValueError("the operational architecture needs q (Taylor order), e.g. q=3")
        if not isinstance(q, int) or q < 1:
            raise ValueError(f"q must be a positive integer, got {q!r}")
        return q
    if q not in (None, 1):
        raise ValueError(f"q applies to the operational architecture only (got q={q} for {arch})")
    return None


def build_generator(arch: str, q: int | None = None) -> R2CGenerator:
    """A freshly initialised generator: ``build_generator("operational", q=3)``."""
    q = check_arch(arch, q)
    if arch == "operational":
        return CompactGenerator(q=q, activation="tanh")
    if arch == "convolutional-light":
        return CompactGenerator(q=1, activation="relu")
    if arch == "task-unet":
        return TaskGANGenerator()
    return DeepGenerator()


def build_discriminator(arch: str, q: int | None = None) -> PatchDiscriminator:
    """The discriminator the authors pair with each generator architecture."""
    q = check_arch(arch, q)
    if arch == "operational":
        return operational_discriminator(q)
    if arch == "convolutional-light":
        return conv_light_discriminator()
    if arch == "task-unet":
        return task_gan_discriminator()
    return conv_discriminator()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "ARCHITECTURES",
    "OUTPUT_MODES",
    "ResidualRestorer",
    "ToneCurve",
    "call_generator",
    "file_state",
    "split_file_state",
    "TaskGANGenerator",
    "UNetGenerator",
    "wrap_output",
    "SUPPORTED_Q",
    "CompactGenerator",
    "DeepGenerator",
    "PatchDiscriminator",
    "R2CGenerator",
    "build_discriminator",
    "build_generator",
    "check_arch",
    "parameter_count",
]

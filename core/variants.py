"""The restoration variants the app knows, and where their weights are.

A *variant* is one trained generator (architecture + Taylor order) with a stable id used
everywhere (CLI, studies, cache keys). Shipped weights live in ``resources/models``;
users may point ``R2C_MODELS_DIR`` at another folder of model files with the same names,
or pass a model file explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import WeightsError

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


@dataclass(frozen=True)
class Variant:
    id: str
    display_name: str
    architecture: str
    q: int | None
    default_iterations: int


VARIANTS: dict[str, Variant] = {
    v.id: v
    for v in (
        Variant("r2c-cnn", "R2C-GAN (CNN)", "convolutional", None, 1),
        Variant("r2c-cnn-light", "R2C-GAN (CNN*)", "convolutional-light", None, 3),
        Variant("r2c-q1", "R2C-GAN (Q=1)", "operational", 1, 3),
        Variant("r2c-q3", "R2C-GAN (Q=3)", "operational", 3, 3),
        Variant("r2c-q5", "R2C-GAN (Q=5)", "operational", 5, 3),
        Variant("task-gan", "Task-GAN (U-Net)", "task-unet", None, 1),
    )
}

SEGMENTER_ID = "lung-unet-densenet121"


def get_variant(variant_id: str) -> Variant:
    try:
        return VARIANTS[variant_id]
    except KeyError:
        raise WeightsError(None, f"unknown variant {variant_id!r}; known: {', '.join(VARIANTS)}") from None


def variant_for(architecture: str, q: int | None) -> Variant | None:
    for v in VARIANTS.values():
        if v.architecture == architecture and v.q == q:
            return v
    return None


def models_dirs() -> list[Path]:
    """Folders searched for model files, most specific first."""
    dirs = []
    if os.environ.get("R2C_MODELS_DIR"):
        dirs.append(Path(os.environ["R2C_MODELS_DIR"]))
    dirs.append(RESOURCES / "models")
    return dirs


def weights_path(model_id: str) -> Path | None:
    """The model file for a variant or the segmenter, or None when none is installed."""
    for d in models_dirs():
        p = d / f"{model_id}.safetensors"
        if p.is_file():
            return p
    return None

"""A training run on disk: domain plan, trainer, resume, and the exported generator model file.

``runs/<name>/`` holds ``domains.json`` (the reproducible split and domain assignment),
``config.json``, ``metrics.csv``, ``samples/``, ``checkpoints/`` and, after every
checkpoint, ``model/<variant>.safetensors``: the current G_A2B (poor -> high quality)
as an app-ready model file.
"""

from __future__ import annotations

import logging
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

from core.models import file_state
from core.train.data import read_gray, read_labeled_folder
from core.train.domains import DomainPlan, build_domain_plan
from core.train.gan import GanConfig, GanData, GanTrainer
from core.variants import variant_for
from core.weights.model_file import Manifest, save_model

log = logging.getLogger(__name__)


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} thread(s)"


def command_line() -> str:
    """The training command as typed, shell-quoted so that a pasted ``--exclude ""`` survives; empty
    when training was not started from the ``r2c-review`` command (tests, notebooks)."""
    return shlex.join(["r2c-review", *sys.argv[1:]]) if sys.argv and "r2c" in sys.argv[0] else ""


def load_or_build_plan(run_dir: Path, data_dir: Path, seed: int, test_fraction: float) -> DomainPlan:
    path = run_dir / "domains.json"
    if path.is_file():
        return DomainPlan.load(path)
    items = read_labeled_folder(data_dir)
    plan = build_domain_plan(items, seed=seed, test_fraction=test_fraction)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # several ranks may build it at once
    plan.save(tmp)
    os.replace(tmp, path)
    return plan


def export_generator(state: dict[str, torch.Tensor], config: dict, plan: DomainPlan, data_dir: Path, out: Path,
                     step: int, epochs_done: float, recipe: str, extra: dict | None = None,
                     output_mode: str = "absolute") -> Manifest:
    """Write the poor -> high generator's tensors (``core.models.file_state``) as an app model file."""
    arch, q = config["arch"], config.get("q")
    variant = variant_for(arch, q)
    vid = variant.id if variant else f"{arch}-q{q}"
    provenance = {
        "source": f"trained by R2C Review's own code (r2c-review train --recipe {recipe})",
        "recipe": recipe,
        "training_data": str(data_dir),
        "domains": plan.summary(),
        "domain_recipe": "core/train/domains.py (quality-ranked real images + blind-degraded held-apart clean images)",
        "command": command_line(),
        "step": step,
        "epochs_done": round(epochs_done, 2),
        "config": config,
        "hardware": hardware(),
        "licence": "research use only (trained on public data under mixed licences incl. CC BY-NC)",
        **(extra or {}),
    }
    manifest = Manifest(
        variant_id=vid,
        display_name=variant.display_name if variant else vid,
        kind="generator",
        architecture=arch,
        q=q,
        default_iterations=variant.default_iterations if variant else 1,
        input_size=config.get("crop_size", config.get("image_size", 256)),
        output_mode=output_mode,
        provenance=provenance,
    )
    return save_model(out / f"{vid}.safetensors", {k: v.detach().cpu() for k, v in state.items()}, manifest)


def export_gan(trainer: GanTrainer, plan: DomainPlan, data_dir: Path, out: Path) -> Manifest:
    cfg = trainer.config
    return export_generator(file_state(trainer.G_A2B), cfg.to_json(), plan, data_dir, out, trainer.step,
                            trainer.step / trainer.steps_per_epoch, cfg.recipe, output_mode=cfg.output_mode)


def run_gan_training(config: GanConfig, data_dir: Path, run_dir: Path, device: torch.device,
                     max_steps: int | None = None, test_fraction: float = 0.2, progress: bool = True,
                     max_seconds: float | None = None) -> GanTrainer:
    plan = load_or_build_plan(run_dir, data_dir, config.seed, test_fraction)
    log.info("%s", plan.summary())
    items = read_labeled_folder(data_dir)
    data = GanData.from_plan(plan, items, config.load_size, read_gray)
    trainer = GanTrainer(config, data, run_dir, device)
    trainer.resume()
    trainer.on_checkpoint = lambda t: export_gan(t, plan, data_dir, run_dir / "model")
    trainer.fit(max_steps=max_steps, progress=progress, max_seconds=max_seconds)
    return trainer

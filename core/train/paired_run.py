"""A paired warm-start run on disk (``r2c-review train --recipe paired``).

The run folder is laid out like a CycleGAN run (``core/train/gan_run.py``): ``domains.json``
(the held-out split of the labelled folder, shared with the evaluation), ``config.json``,
``metrics.csv``, ``checkpoints/`` and ``model/<variant>.safetensors`` after every checkpoint.

Restoration targets are the *clean pool* of the labelled folder's training patients (the
better-scored half, ``core/train/domains.py``) plus the training patients of any ``extra``
folders (e.g. NIH films, whose labels are not COVID-19/control: restoration only). The class
head learns from every training film of the labelled folder. Test patients of the labelled
folder and held-out patients of the extra folders are never seen.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from core.models import file_state
from core.train.data import UNLABELED, holdout_by_patient, read_gray, read_labeled_folder
from core.train.gan_run import export_generator, load_or_build_plan
from core.train.paired import PairedConfig, PairedData, PairedTrainer, load_films

log = logging.getLogger(__name__)

EXTRA_HOLDOUT = 0.2


def build_paired_data(run_dir: Path, data_dir: Path, extra: list[Path], config: PairedConfig,
                      test_fraction: float, write: bool = True) -> tuple[PairedData, dict]:
    plan = load_or_build_plan(run_dir, data_dir, config.seed, test_fraction)
    by_name = {it.name: it for it in read_labeled_folder(data_dir)}
    target_names = plan.train_clean + plan.train_degraded
    train_names = sorted(plan.train_poor + target_names)
    target_paths = [by_name[n].path for n in target_names]
    own = load_films(target_paths, config.load_size, read_gray)
    extra_films: list = []
    extra_summary = {}
    for folder in extra:
        train, held = holdout_by_patient(read_labeled_folder(folder, other_labels=True), EXTRA_HOLDOUT, config.seed)
        extra_films += load_films([it.path for it in train], config.load_size, read_gray)
        extra_summary[str(folder)] = {"train": len(train), "held_out": len(held)}
    # The labelled folder's many sources should weigh as much as a large single-source extra
    # folder: its films are repeated (by reference) to about half of the draws.
    repeat = max(1, round(len(extra_films) / max(len(own), 1)))
    log.info("paired data: %d own clean films (x%d) + %d extra, %d labelled films",
             len(own), repeat, len(extra_films), len(train_names))
    data = PairedData(
        targets=own * repeat + extra_films,
        labeled=load_films([by_name[n].path for n in train_names], config.load_size, read_gray),
        labels=[by_name[n].label for n in train_names],
    )
    summary = {"plan": plan.summary(), "own_targets": len(own), "own_repeat": repeat,
               "extra_targets": len(extra_films), "labelled": len(train_names),
               "extra": extra_summary, "unlabeled_value": UNLABELED}
    if write:
        (run_dir / "paired_data.json").write_text(json.dumps(summary, indent=1))
    return data, {"plan": plan, "summary": summary}


def run_paired_training(config: PairedConfig, data_dir: Path, run_dir: Path, device: torch.device,
                        extra: list[Path] | None = None, max_steps: int | None = None,
                        max_seconds: float | None = None, test_fraction: float = 0.2,
                        progress: bool = True) -> PairedTrainer:
    from core.train.distributed import init_from_env

    dist_info, device = init_from_env(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    data, info = build_paired_data(run_dir, data_dir, list(extra or []), config, test_fraction,
                                   write=dist_info.main)
    trainer = PairedTrainer(config, data, run_dir, device)
    trainer.resume()
    per_epoch = max(len(set(map(id, data.targets))) // max(config.patches, 1), 1)

    def export(t: PairedTrainer) -> None:
        export_generator(file_state(t.G), config.to_json(), info["plan"], data_dir, run_dir / "model", t.step,
                         t.step / per_epoch, "paired", extra={"paired_data": info["summary"]},
                         output_mode=config.output_mode)

    trainer.on_checkpoint = export
    trainer.fit(max_steps=max_steps, max_seconds=max_seconds, progress=progress)
    return trainer

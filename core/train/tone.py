"""Fitting the global tone curve of the residual restorers on whole films (stage 0 of the recipe).

The curve (``core.models.residual.ToneCurve``) reads only a film's gray-level statistics and
changes only its gray scale, so it can be fitted without the generator: degrade a clean film
with the training blend (``core.degrade``), compute the whole degraded film's statistics, apply
the curve and compare with the clean film, plus the same on the clean film itself (a good film
must keep its tones). Films are compared at 64 px (tones do not need detail), so thousands of
steps take minutes on a CPU. Every variant's restorer then starts from, or is given, this curve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.degrade import degrade
from core.models.residual import ToneCurve
from core.preprocess import to_square

log = logging.getLogger(__name__)

STATS_SIZE = 256  # the size the app computes statistics at (the generators' input)
LOSS_SIZE = 64


@dataclass
class ToneConfig:
    steps: int = 3000
    batch: int = 16
    lr: float = 1e-3
    identity_weight: float = 1.0
    seed: int = 0


def _prepare(film: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(statistics at STATS_SIZE, LOSS_SIZE image in [-1, 1]) of a display film."""
    big = to_square(film, STATS_SIZE)
    x = torch.from_numpy(big)[None, None] * 2 - 1
    small = cv2.resize(big, (LOSS_SIZE, LOSS_SIZE), interpolation=cv2.INTER_AREA)
    return ToneCurve.statistics(x)[0], torch.from_numpy(small)[None] * 2 - 1


def fit_tone_curve(films: list[np.ndarray], config: ToneConfig, curve: ToneCurve | None = None,
                   progress: bool = True) -> tuple[ToneCurve, list[float]]:
    """Fit (or continue fitting) a tone curve on clean ``films``; returns it and the loss per 100 steps."""
    from tqdm import tqdm

    curve = curve or ToneCurve()
    opt = torch.optim.Adam(curve.parameters(), lr=config.lr)
    clean = [_prepare(f) for f in films]
    history, window = [], []
    for step in tqdm(range(config.steps), desc="tone curve", disable=not progress, unit="step"):
        rng = np.random.default_rng([config.seed, step, 0x70E])
        idx = rng.integers(len(films), size=config.batch)
        bad = [_prepare(degrade(to_square(films[i], STATS_SIZE), rng).image) for i in idx]
        stats = torch.stack([b[0] for b in bad] + [clean[i][0] for i in idx])
        inputs = torch.stack([b[1] for b in bad] + [clean[i][1] for i in idx])
        targets = torch.stack([clean[i][1] for i in idx] * 2)
        lr = config.lr * min(1.0, 2.0 * (1.0 - step / config.steps))  # constant, then linear to 0
        for group in opt.param_groups:
            group["lr"] = lr
        out = curve(inputs, stats)
        n = len(idx)
        loss = F.l1_loss(out[:n], targets[:n]) + config.identity_weight * F.l1_loss(out[n:], targets[n:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(float(loss))
        if len(window) == 100:
            history.append(float(np.mean(window)))
            window = []
    return curve, history


TONE_FILE = "tone-curve.safetensors"


def run_tone_fitting(data_dir, extra, run_dir, config: ToneConfig, test_fraction: float = 0.2,
                     progress: bool = True) -> dict:
    """``r2c-review train --recipe tone``: fit on the paired recipe's clean targets; continues from
    ``RUN/model/tone-curve.safetensors`` when it exists. Returns what was written."""
    import json
    import time
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    from core.train.paired import PairedConfig
    from core.train.paired_run import build_paired_data

    run_dir = Path(run_dir)
    out = run_dir / "model" / TONE_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    data, _ = build_paired_data(run_dir, Path(data_dir), [Path(e) for e in extra],
                                PairedConfig(arch="convolutional-light", seed=0), test_fraction)
    films = list({id(f): f for f in data.targets}.values())  # the own films are repeated by reference
    curve = ToneCurve()
    done = 0
    if out.is_file():
        curve.load_state_dict(load_file(str(out)))
        done = int(json.loads(out.with_suffix(".json").read_text()).get("steps", 0))
    started = time.monotonic()
    curve, history = fit_tone_curve(films, config, curve, progress)
    record = {"steps": done + config.steps, "films": len(films), "last_config": config.__dict__,
              "loss_per_100_steps": history, "seconds": round(time.monotonic() - started, 1)}
    save_file({k: v.contiguous() for k, v in curve.state_dict().items()}, str(out))
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record

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
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.degrade import degrade
from core.models.residual import ToneCurve
from core.preprocess import to_square

if TYPE_CHECKING:
    from core.weights.model_file import Manifest

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
    own_share: float = 0.5  # share of draws from the labelled folder's films (see run_tone_fitting)
    jitter: float = 0.5  # probability of a natural tone variation of the clean film (target and input)
    thumb: int = 0  # side of the film thumbnail the curve reads besides the quantiles (ToneCurve)
    hidden: int = 64  # width of a new curve's MLP (a continued curve keeps its own)
    loss: str = "l1"  # "l1", or "psnr": minus each film's PSNR, averaged (see film_psnr_loss)
    clean_floor: float = 3e-4  # psnr loss: MSE floor of the clean-film term (35 dB: no reward for keeping better)


TONE_LOSSES = ("l1", "psnr")
PSNR_FLOOR = 1e-4  # MSE floor of the psnr loss (40 dB on the [0, 1] scale): no gain counts beyond it


def film_psnr_loss(out: torch.Tensor, target: torch.Tensor, floor: float = PSNR_FLOOR) -> torch.Tensor:
    """Mean over films of minus PSNR (dB, [0, 1] scale), images in [-1, 1].

    Why: the evaluation averages each film's PSNR change, in dB. An L1 (or MSE) loss weighs a film by
    how much is wrong with it, so wrongly re-toning a barely degraded film (blur or JPEG only) costs
    little in the loss but many dB in the figure; in dB both count alike, and a curve fitted this way
    learns to leave a film alone when its statistics do not say clearly what is wrong. ``floor`` caps
    the reward: on clean films a floor near the clean-film bar keeps the curve from buying ever higher
    fidelity on good films with caution on degraded ones.
    """
    mse = ((out.float() - target.float()) * 0.5).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(mse + floor).mean()


def natural_variation(film: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mild, plausible tone change of a good film (another detector or processing curve).

    Applied to the clean film *before* it is degraded and used as the target: the curve then sees
    good films with many tone renderings and learns to undo the degradation, not to pull every film
    towards the typical histogram of the training sources (which damaged good films of other sources).
    """
    gamma = float(np.exp(rng.uniform(-0.3, 0.3)))
    out = np.power(np.clip(film, 0.0, 1.0), gamma)
    level = float(out.mean())
    out = level + (out - level) * rng.uniform(0.85, 1.15) + rng.uniform(-0.05, 0.05)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _prepare(film: np.ndarray, curve: ToneCurve) -> tuple[torch.Tensor, torch.Tensor]:
    """(statistics at STATS_SIZE as ``curve`` reads them, LOSS_SIZE image in [-1, 1]) of a display film."""
    big = to_square(film, STATS_SIZE)
    x = torch.from_numpy(big)[None, None] * 2 - 1
    small = cv2.resize(big, (LOSS_SIZE, LOSS_SIZE), interpolation=cv2.INTER_AREA)
    return curve.film_statistics(x)[0], torch.from_numpy(small)[None] * 2 - 1


def fit_tone_curve(films: list[np.ndarray], config: ToneConfig, curve: ToneCurve | None = None,
                   progress: bool = True, weights: list[float] | None = None) -> tuple[ToneCurve, list[float]]:
    """Fit (or continue fitting) a tone curve on clean ``films``; returns it and the loss per 100 steps.

    ``weights``: relative draw probability of each film (default: uniform).
    """
    from tqdm import tqdm

    curve = curve or ToneCurve(hidden=config.hidden, thumb=config.thumb)
    opt = torch.optim.Adam(curve.parameters(), lr=config.lr)
    squares = [to_square(f, STATS_SIZE) for f in films]
    prob = None if weights is None else np.asarray(weights, np.float64) / float(np.sum(weights))
    history, window = [], []
    for step in tqdm(range(config.steps), desc="tone curve", disable=not progress, unit="step"):
        rng = np.random.default_rng([config.seed, step, 0x70E])
        idx = rng.choice(len(films), size=config.batch, p=prob)
        good = [natural_variation(squares[i], rng) if rng.random() < config.jitter else squares[i] for i in idx]
        bad = [_prepare(degrade(g, rng).image, curve) for g in good]
        clean = [_prepare(g, curve) for g in good]
        stats = torch.stack([b[0] for b in bad] + [c[0] for c in clean])
        inputs = torch.stack([b[1] for b in bad] + [c[1] for c in clean])
        targets = torch.stack([c[1] for c in clean] * 2)
        lr = config.lr * min(1.0, 2.0 * (1.0 - step / config.steps))  # constant, then linear to 0
        for group in opt.param_groups:
            group["lr"] = lr
        out = curve(inputs, stats)
        n = len(idx)
        if config.loss == "psnr":
            loss = (film_psnr_loss(out[:n], targets[:n])
                    + config.identity_weight * film_psnr_loss(out[n:], targets[n:], config.clean_floor))
        else:
            loss = F.l1_loss(out[:n], targets[:n]) + config.identity_weight * F.l1_loss(out[n:], targets[n:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(float(loss.detach()))
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

    from safetensors.torch import load_file

    from core.errors import TrainingError
    from core.train.paired import PairedConfig
    from core.train.paired_run import build_paired_data
    from core.weights.model_file import write_safetensors

    run_dir = Path(run_dir)
    out = run_dir / "model" / TONE_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    data, info = build_paired_data(run_dir, Path(data_dir), [Path(e) for e in extra],
                                   PairedConfig(arch="convolutional-light", seed=0), test_fraction)
    n_own = info["summary"]["own_targets"]  # data.targets: the own films (repeated by reference), then extra
    films = data.targets[:n_own] + data.targets[n_own * info["summary"]["own_repeat"]:]
    # The labelled folder's many sources weigh ``own_share`` of the draws, as in the paired runs: with
    # uniform draws the curve saw ~90 % NIH films and damaged good films of other sources.
    n_extra = len(films) - n_own
    share = config.own_share if n_extra else 1.0
    weights = [share / max(n_own, 1)] * n_own + [(1.0 - share) / max(n_extra, 1)] * n_extra
    curve = ToneCurve(hidden=config.hidden, thumb=config.thumb)
    done = 0
    if out.is_file():
        state = ToneCurve.upgrade_state(load_file(str(out)))
        curve = ToneCurve.for_state(state)  # continue the curve as it is (its width may be an older default)
        if int(curve.thumb) != config.thumb:
            raise TrainingError(out, f"holds a tone curve reading a {int(curve.thumb)} px thumbnail, not "
                                     f"{config.thumb}; fit a new one in another run folder")
        curve.load_state_dict(state)
        done = int(json.loads(out.with_suffix(".json").read_text()).get("steps", 0))
    started = time.monotonic()
    curve, history = fit_tone_curve(films, config, curve, progress, weights)
    record = {"steps": done + config.steps, "films": len(films), "own_films": n_own, "last_config": config.__dict__,
              "loss_per_100_steps": history, "seconds": round(time.monotonic() - started, 1)}
    write_safetensors(out, {k: v.contiguous() for k, v in curve.state_dict().items()}, error=TrainingError)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record


TONE_RUN = "tone"


def graft_tone_curve(state: dict[str, torch.Tensor], tone_run: Path, manifest: Manifest) -> dict[str, torch.Tensor]:
    """Give a residual generator the tone curve fitted on whole films (``train --recipe tone``),
    which saw far more films than a generator run's own curve; recorded in the manifest."""
    import json

    from safetensors.torch import load_file

    from core.models.residual import TONE_PREFIX
    from core.weights.model_file import sha256_of

    path = tone_run / "model" / TONE_FILE
    record = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
    manifest.provenance["tone_curve"] = {"from": "r2c-review train --recipe tone (shared by all variants)",
                                         "sha256": sha256_of(path), "steps": record.get("steps"),
                                         "films": record.get("films")}
    kept = {k: v for k, v in state.items() if not k.startswith(TONE_PREFIX)}
    return kept | {TONE_PREFIX + k: v for k, v in ToneCurve.upgrade_state(load_file(str(path))).items()}

"""Paired warm start of a restoration generator (the first stage of the bundled recipe).

The authors train an unpaired CycleGAN for 2,000 epochs on a GPU; stopped after a few epochs
on a CPU it makes films worse. Our degradation pipeline (``core.degrade``) gives *pairs*, so
the poor -> high generator can first learn restoration directly:

* **restore**: L1 between G(degraded patch) and the clean patch;
* **identity**: L1 between G(clean patch) and the clean patch (a good film must pass through);
* **stability**: L1 between G(G(degraded)) and the clean patch, the first pass detached, so that
  the passes a study asks for (3 for the compact models) do not drift away from the film;
* **class**: cross-entropy of the class head on whole films (degraded or not) against the case
  label, as in the authors' objective, so the COVID-19 head keeps learning;
* Task-GAN only: feature-matching adversarial loss against a conditional discriminator on
  (degraded, restored) vs (degraded, clean) pairs, and the task network's cross-entropy on the
  clean film as well as on the restored one (Ouyang et al. 2019).

Pixel losses use random 128-px patches of films loaded at 286 px (the authors' load size), so
a CPU step is cheap and one step sees several films. Every random choice of step ``s`` comes
from a generator seeded with ``(seed, s)``: a resumed run continues exactly.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.degrade import degrade
from core.errors import TrainingError
from core.models import (
    ResidualRestorer,
    ToneCurve,
    build_discriminator,
    build_generator,
    call_generator,
    check_arch,
    file_state,
    wrap_output,
)
from core.models.residual import STATS_POOL
from core.models.upsampling import balance_model
from core.train import distributed
from core.train.checkpoint import load_latest_checked, load_optimizer, optimizer_tensors, save_checkpoint
from core.train.gan import lsgan_d_loss

log = logging.getLogger(__name__)

TONE_LR_SCALE = 3.0
UNLABELED = -1  # films used as restoration targets only (no COVID-19/control label)


@dataclass
class PairedConfig:
    arch: str
    q: int | None = None
    steps: int = 20000  # planned total: the learning rate decays linearly over the last quarter
    lr: float = 2e-4
    patch: int = 128
    patches: int = 4  # degraded patches per step
    identity_patches: int = 1
    stability_patches: int = 2  # of the restored patches, passed through the generator a second time
    films: int = 1  # whole films for the class head per step that has them
    film_every: int = 2  # films every this many steps
    load_size: int = 286
    image_size: int = 256
    restore_weight: float = 1.0
    identity_weight: float = 1.0
    stability_weight: float = 0.5
    # L1 on the high-pass part (image minus its 7x7 local mean) of restored vs clean patches. The plain
    # L1 is dominated by what tone errors leave, whose sign is constant over a neighbourhood, so it
    # carries almost no signal for noise and blur: the first bundled nets did not denoise at all.
    detail_weight: float = 1.0
    cls_weight: float = 0.05
    feature_match_weight: float = 0.05  # Task-GAN only
    task_clean_weight: float = 0.05  # Task-GAN only
    output_mode: str = "residual"
    balance_upsampling: bool = True  # project transposed convolutions to checkerboard-free weights
    # bfloat16 autocast: on a GPU, and on CPUs with AVX512-BF16 (2.2-2.5x faster steps measured here)
    amp: bool | None = None  # None: decide from the device
    seed: int = 0
    checkpoint_every: int = 200
    init_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PairedData:
    """Films at load size (gray float32 in [0, 1]): clean restoration targets and labelled films."""

    targets: list[np.ndarray]  # clean films: degraded on the fly, restored back
    labeled: list[np.ndarray]  # films for the class head (any quality)
    labels: list[int]

    def __post_init__(self) -> None:
        self._stats: dict[int, torch.Tensor] = {}
        # how a whole film's tone statistics are read: the trainer sets its tone curve's own reader
        self.statistics: Callable[[torch.Tensor], torch.Tensor] = ToneCurve.statistics
        if not self.targets:
            raise TrainingError(None, "paired training needs at least one clean film")
        if not self.labeled:
            raise TrainingError(None, "paired training needs at least one labelled film for the class head")

    def stats(self, index: int) -> torch.Tensor:
        """Whole-film tone statistics of target ``index`` (cached: the clean films never change)."""
        if index not in self._stats:
            self._stats[index] = self.statistics(_to_tensor([self.targets[index]]))[0]
        return self._stats[index]

    def forget_statistics(self) -> None:
        self._stats.clear()


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    out = img[y : y + size, x : x + size]
    return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)


def _crop_pair(a: np.ndarray, b: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random crop (and flip) of two aligned films."""
    h, w = a.shape
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    flip = rng.random() < 0.5
    out = []
    for img in (a, b):
        p = img[y : y + size, x : x + size]
        out.append(np.ascontiguousarray(p[:, ::-1] if flip else p))
    return out[0], out[1]


def high_pass(x: torch.Tensor, size: int = 7) -> torch.Tensor:
    """``x`` minus its ``size`` x ``size`` local mean (reflected borders): fine detail and noise only."""
    pad = size // 2
    return x - F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), size, stride=1)


def _to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(batch)).float()[:, None] * 2.0 - 1.0
    return x.repeat(1, 3, 1, 1)


def use_amp(device: torch.device) -> bool:
    """bfloat16 autocast where it is fast: CUDA, or a CPU with AVX512-BF16 / AMX."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_films(paths: list[Path], size: int, reader: Callable[[Path], np.ndarray]) -> list[np.ndarray]:
    return [cv2.resize(reader(p), (size, size), interpolation=cv2.INTER_AREA) for p in paths]


class GeneratorStep(nn.Module):
    """Every generator forward of one step in one call, so DistributedDataParallel sees one forward
    per backward: the restoration of degraded + identity patches, the detached second pass over the
    first ``k`` restored patches, the class logits of whole films and (Task-GAN) the task network on
    the clean films."""

    def __init__(self, G: nn.Module, net: nn.Module, task_gan: bool) -> None:
        super().__init__()
        self.G, self.net, self.task_gan = G, net, task_gan

    def forward(self, patches: torch.Tensor, stats: torch.Tensor, clean_stats: torch.Tensor, n: int, stride: int,
                film_in: torch.Tensor | None, film_clean: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """``stats``: whole-film statistics of each patch's film; the second pass reads those of the
        clean film (what the first pass should have produced)."""
        out, _ = call_generator(self.G, patches, stats)
        second = call_generator(self.G, out[:n:stride].detach(), clean_stats[::stride])[0] if stride \
            else out.new_zeros(0)
        logits = call_generator(self.G, film_in)[1] if film_in is not None else out.new_zeros(0)
        clean_logits = self.net.classify(film_clean) if self.task_gan and film_clean is not None else out.new_zeros(0)
        return out, second, logits, clean_logits


class PairDiscriminator(nn.Module):
    """The conditional discriminator's features on real and fake pairs, in one call (see above)."""

    def __init__(self, D: nn.Module) -> None:
        super().__init__()
        self.D = D

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.D.features(real), self.D.features(fake)


class PairedTrainer:
    """Owns the generator (and, for Task-GAN, the discriminator); trains and checkpoints."""

    LOSS_NAMES = ("total", "restore", "detail", "identity", "stability", "cls", "feature_match", "task_clean", "d")

    def __init__(self, config: PairedConfig, data: PairedData, run_dir: Path, device: torch.device) -> None:
        check_arch(config.arch, config.q)
        self.config, self.data, self.run_dir, self.device = config, data, Path(run_dir), device
        torch.manual_seed(config.seed)
        self.net = build_generator(config.arch, config.q)
        self.G = wrap_output(self.net, config.output_mode)
        if config.init_from:
            self._init_from(Path(config.init_from))
        elif isinstance(self.G, ResidualRestorer):
            self.G.zero_output()
        if config.balance_upsampling:
            balance_model(self.net)
        self._current_statistics()
        self.amp = use_amp(device) if config.amp is None else config.amp
        self.G.to(device)
        self.task_gan = config.arch == "task-unet"
        self.D = build_discriminator(config.arch, config.q).to(device) if self.task_gan else None
        self.dist = distributed.current()
        self.step_module = distributed.wrap(GeneratorStep(self.G, self.net, self.task_gan), self.dist, device)
        self.pair_d = distributed.wrap(PairDiscriminator(self.D), self.dist, device) if self.D else None
        betas = (0.5, 0.999)
        # The tone curve is a tiny MLP that must learn from few steps: 3x the learning rate.
        tone = list(self.G.tone.parameters()) if isinstance(self.G, ResidualRestorer) else []
        rest = [p for p in self.G.parameters() if all(p is not t for t in tone)]
        groups = [{"params": rest}] + ([{"params": tone, "lr_scale": TONE_LR_SCALE}] if tone else [])
        self.opt_G = torch.optim.Adam(groups, lr=config.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas) if self.D else None
        self.step = 0
        self.on_checkpoint: Callable[[PairedTrainer], None] | None = None

    def _init_from(self, path: Path) -> None:
        """Start from a model file (e.g. the earlier CycleGAN weights); a residual start is the identity."""
        from core.restore import load_generator_state
        from core.weights.model_file import load_state

        state, manifest = load_state(path)
        if (manifest.architecture, manifest.q) != (self.config.arch, self.config.q):
            raise TrainingError(path, f"holds {manifest.architecture} q={manifest.q}, "
                                      f"not {self.config.arch} q={self.config.q}")
        load_generator_state(self.G, state, path, require_tone=False)
        if isinstance(self.G, ResidualRestorer) and manifest.output_mode != "residual":
            self.G.zero_output()

    def _current_statistics(self) -> None:
        """The data pipeline reads films with today's statistics; a curve started from an older file
        (pixel quantiles) is retrained to read them the same way."""
        if isinstance(self.G, ResidualRestorer):
            self.G.tone.stats_pool.fill_(STATS_POOL)
            self.data.statistics = self.G.tone.film_statistics  # whatever kind of curve the start file had
        else:
            self.data.statistics = ToneCurve.statistics
        self.data.forget_statistics()

    # ----- schedule -------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        decay_start = int(0.75 * self.config.steps)
        if step < decay_start:
            return self.config.lr
        return self.config.lr * max(0.0, 1.0 - (step - decay_start) / max(self.config.steps - decay_start, 1))

    # ----- data -----------------------------------------------------------------------
    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """This process's share of step ``step``'s global batch (all of it when not distributed)."""
        cfg, data, info = self.config, self.data, self.dist
        rng = np.random.default_rng([cfg.seed, step, 0xA1])
        n_t = len(data.targets)
        clean, degraded, clean_stats, deg_stats = [], [], [], []
        for _ in range(cfg.patches):  # degrade the whole film, cut the same patch from both
            i = int(rng.integers(n_t))
            film, bad = data.targets[i], degrade(data.targets[i], rng).image
            c, d = _crop_pair(film, bad, cfg.patch, rng)
            clean.append(c)
            degraded.append(d)
            clean_stats.append(data.stats(i))
            deg_stats.append(data.statistics(_to_tensor([bad]))[0])
        ident, ident_stats = [], []
        for _ in range(cfg.identity_patches):
            i = int(rng.integers(n_t))
            ident.append(_crop(data.targets[i], cfg.patch, rng))
            ident_stats.append(data.stats(i))
        films, films_in, labels = [], [], []
        if cfg.films and step % max(cfg.film_every, 1) == 0:
            for _ in range(cfg.films):
                i = int(rng.integers(len(data.labeled)))
                film = _crop(data.labeled[i], cfg.image_size, rng)
                films_in.append(degrade(film, rng).image if rng.random() < 0.5 else film)
                films.append(film)
                labels.append(data.labels[i])
        dev = self.device
        p, s = info.shard(cfg.patches, "degraded patches"), info.shard(cfg.identity_patches, "identity patches")
        stats = torch.stack(deg_stats[p] + ident_stats[s])
        out = {
            "degraded": _to_tensor(degraded[p]).to(dev), "clean": _to_tensor(clean[p]).to(dev),
            "identity": _to_tensor(ident[s]).to(dev) if ident else torch.empty(0, 3, cfg.patch, cfg.patch, device=dev),
            "stats": stats.to(dev), "clean_stats": torch.stack(clean_stats[p]).to(dev),
        }
        if films:
            f = info.shard(len(films), "films")
            out |= {"film_in": _to_tensor(films_in[f]).to(dev), "film_clean": _to_tensor(films[f]).to(dev),
                    "label": torch.tensor(labels[f], dtype=torch.long, device=dev)}
        return out

    def stability_stride(self) -> int:
        """Every ``stride``-th degraded patch gets the second pass (0: none). Patches 0, stride, 2*stride...
        of the global batch, so a distributed run passes the same patches twice as a single process."""
        cfg = self.config
        if not cfg.stability_patches:
            return 0
        if cfg.patches % cfg.stability_patches:
            raise TrainingError(None, f"stability patches ({cfg.stability_patches}) must divide the patches "
                                      f"per step ({cfg.patches})")
        stride = cfg.patches // cfg.stability_patches
        if (cfg.patches // self.dist.world) % stride:
            raise TrainingError(None, f"each of {self.dist.world} processes must hold whole groups of {stride} patches")
        return stride

    # ----- one optimisation step --------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        cfg = self.config
        b = self.batch(self.step)
        lr = self.lr_at(self.step)
        for opt in (self.opt_G, self.opt_D):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr * group.get("lr_scale", 1.0)
        n, stride = b["degraded"].shape[0], self.stability_stride()
        labelled = b["label"] != UNLABELED if "label" in b else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out, second, logits, clean_logits = self.step_module(
                torch.cat([b["degraded"], b["identity"]]), b["stats"], b["clean_stats"], n, stride,
                b.get("film_in"), b.get("film_clean"))
            out = out.float()
            restored, ident_out = out[:n], out[n:]
            parts: dict[str, torch.Tensor] = {"restore": F.l1_loss(restored, b["clean"]),
                                              "detail": F.l1_loss(high_pass(restored), high_pass(b["clean"]))}
            zero = restored.new_zeros(())
            parts["identity"] = F.l1_loss(ident_out, b["identity"]) if ident_out.numel() else zero
            parts["stability"] = F.l1_loss(second.float(), b["clean"][::stride]) if stride else zero
            parts["cls"] = parts["feature_match"] = parts["task_clean"] = parts["d"] = zero
            if labelled is not None and labelled.any():
                parts["cls"] = F.cross_entropy(logits.float()[labelled], b["label"][labelled])
                if self.task_gan:
                    parts["task_clean"] = F.cross_entropy(clean_logits.float()[labelled], b["label"][labelled])
            if self.pair_d is not None:
                real_feats, fake_feats = self.pair_d(torch.cat([b["degraded"], b["clean"]], dim=1),
                                                     torch.cat([b["degraded"], restored], dim=1))
                parts["feature_match"] = sum(F.l1_loss(f.float(), r.detach().float())
                                             for f, r in zip(fake_feats[:-1], real_feats[:-1], strict=True))
        total = (cfg.restore_weight * parts["restore"] + cfg.detail_weight * parts["detail"]
                 + cfg.identity_weight * parts["identity"]
                 + cfg.stability_weight * parts["stability"] + cfg.cls_weight * parts["cls"]
                 + cfg.feature_match_weight * parts["feature_match"] + cfg.task_clean_weight * parts["task_clean"])
        self.opt_G.zero_grad(set_to_none=True)
        total.backward()
        self.opt_G.step()
        if cfg.balance_upsampling:
            balance_model(self.net)
        if self.pair_d is not None:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                real_feats, fake_feats = self.pair_d(torch.cat([b["degraded"], b["clean"]], dim=1),
                                                     torch.cat([b["degraded"], restored.detach()], dim=1))
                d_loss = lsgan_d_loss(real_feats[-1].float(), fake_feats[-1].float())
            self.opt_D.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_D.step()
            parts["d"] = d_loss
        self.step += 1
        return {"total": float(total.detach()), **{k: float(v.detach()) for k, v in parts.items()}, "lr": lr}

    # ----- checkpoints ------------------------------------------------------------------
    def save(self) -> Path:
        tensors = {f"G.{k}": v for k, v in file_state(self.G).items()}
        g_t, g_s = optimizer_tensors("opt_G", self.opt_G)
        tensors |= g_t
        state: dict[str, Any] = {"step": self.step, "config": self.config.to_json(), "opt_G": g_s}
        if self.D is not None and self.opt_D is not None:
            tensors |= {f"D.{k}": v for k, v in self.D.state_dict().items()}
            d_t, d_s = optimizer_tensors("opt_D", self.opt_D)
            tensors |= d_t
            state["opt_D"] = d_s
        tensors["torch_rng"] = torch.get_rng_state()
        return save_checkpoint(self.run_dir, self.step, tensors, state)

    def resume(self) -> bool:
        found = load_latest_checked(self.run_dir, self.config, ("arch", "q", "seed", "patch", "output_mode"))
        if found is None:
            return False
        path, tensors, state = found
        from core.restore import load_generator_state

        load_generator_state(self.G, {k[2:]: v for k, v in tensors.items() if k.startswith("G.")}, path,
                             require_tone=False)  # checkpoints from before the tone curve lack it
        load_optimizer("opt_G", self.opt_G, tensors, state["opt_G"])
        if self.D is not None and self.opt_D is not None:
            self.D.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("D.")})
            load_optimizer("opt_D", self.opt_D, tensors, state["opt_D"])
        torch.set_rng_state(tensors["torch_rng"])
        self.step = int(state["step"])
        if self.config.balance_upsampling:
            balance_model(self.net)  # a checkpoint from before the projection was introduced
        self._current_statistics()
        log.info("resumed %s at step %d", path, self.step)
        return True

    # ----- the loop ---------------------------------------------------------------------
    def _stop(self, local: bool) -> bool:
        """Rank 0 decides (time budget, cancel) for every rank, so none waits alone in a collective."""
        if not self.dist.active:
            return local
        import torch.distributed as dist

        flag = torch.tensor([int(local)], device=self.device)
        dist.broadcast(flag, 0)
        return bool(flag.item())

    def fit(self, max_steps: int | None = None, max_seconds: float | None = None, progress: bool = True,
            cancelled: Callable[[], bool] | None = None) -> int:
        """Train to ``config.steps`` (or ``max_steps`` more, or for ``max_seconds``); returns steps done now."""
        from tqdm import tqdm

        main = self.dist.main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(self.config.to_json(), indent=1))
        end = self.config.steps if max_steps is None else min(self.config.steps, self.step + max_steps)
        log_path = self.run_dir / "metrics.csv"
        new_log = not log_path.exists()
        started, done = time.monotonic(), 0
        self.G.train()
        with (open(log_path, "a", newline="") if main else open(os.devnull, "w")) as f, \
                tqdm(total=end, initial=self.step, disable=not (progress and main), unit="step",
                     desc=f"paired {self.config.arch} q={self.config.q}", dynamic_ncols=True) as bar:
            writer = csv.DictWriter(f, fieldnames=["step", "lr", "seconds", *self.LOSS_NAMES])
            if new_log:
                writer.writeheader()
            while self.step < end:
                timed_out = bool(max_seconds) and time.monotonic() - started > max_seconds  # type: ignore[operator]
                if self._stop(bool(cancelled and cancelled()) or timed_out):
                    break
                t0 = time.perf_counter()
                losses = self.train_step()
                done += 1
                writer.writerow({"step": self.step, "seconds": round(time.perf_counter() - t0, 4),
                                 **{k: round(v, 6) for k, v in losses.items()}})
                bar.update(1)
                bar.set_postfix(restore=f"{losses['restore']:.4f}", ident=f"{losses['identity']:.4f}",
                                cls=f"{losses['cls']:.3f}", refresh=False)
                if self.step % self.config.checkpoint_every == 0:
                    f.flush()
                    self._checkpoint()
            if done and self.step % self.config.checkpoint_every != 0:
                self._checkpoint()
        return done

    def _checkpoint(self) -> None:
        if not self.dist.main:
            return
        self.save()
        if self.on_checkpoint:
            self.on_checkpoint(self)

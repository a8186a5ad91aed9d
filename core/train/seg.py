"""Lung-segmenter training: DenseNet-121 U-Net, Dice + BCE, augmentation, resumable.

Trained on the standard-convention masks (lung fields, heart excluded). ``v7covid`` masks
include the retrocardiac region, a different convention, so that set is kept apart by
default and only used as a robustness check in evaluation.

Augmentation covers what the segmenter meets in the app and at other hospitals: small
rotations, scaling and shifts, exposure, gamma and contrast changes, burned-in lateral markers
and text, and, for half of the samples, the same blind blend of artifacts the restorers learn
to remove (noise, blur, JPEG, saturation), so masks on poor and restored images stay comparable
in the segmentation study. Synthetic lung opacities (``add_opacity``) are available but off by
default: measured below, they did not pay.
With the first augmentation (milder, no markers, a third degraded) the segmenter lost 7 Dice
points on hospitals it never saw.

``heart_including`` names sources whose outlines take in the heart and retrocardiac region
(measured 2026-12-03: the GeneralBlockchain polygons run a straight medial border down the
mediastinum; a model trained on Shenzhen alone drew 22 % less lung than them on every one of their
98 films, at precision 0.97). Trained as if they were standard, they teach the model to switch
convention with the look of the film: heart in on COVID-19-like films, out on screening films,
a 25 % swing in lung area that a restoration can trigger. With ``heart_including`` those masks
train a second output channel instead, and the standard channel learns from them only what both
conventions agree on (``core.train.conventions.standard_hint``); the exported model keeps the standard channel alone.

``leave_out`` trains on every standard-convention source but one and measures on all of that
one (``loso.json``): the figure a new hospital would see, which the own-split figure is not.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from core.degrade import degrade
from core.errors import TrainingError
from core.models.segmenter import SEGMENTER_ARCH, SEGMENTER_INPUT, build_segmenter, head_keys
from core.segment import to_segmenter_input
from core.train.checkpoint import latest_checkpoint, load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from core.train.conventions import HEART_INCLUDING, SAME_COLLECTION, mask_figures, mean_figures, standard_hint
from core.train.data import MaskPair, read_gray, read_mask, read_mask_folder, split_masks
from core.train.gan_run import command_line, hardware
from core.variants import SEGMENTER_ID
from core.weights.model_file import Manifest, save_model

log = logging.getLogger(__name__)


@dataclass
class SegConfig:
    epochs: int = 80
    batch_size: int = 8
    lr: float = 1e-3
    seed: int = 0
    size: int = SEGMENTER_INPUT
    test_fraction: float = 0.2
    exclude: tuple[str, ...] = ("v7covid",)
    checkpoint_every: int = 50
    init_from: str | None = None  # a segmenter model file to fine-tune (e.g. at a larger size)
    leave_out: str | None = None  # a source (dataset) trained without and measured on (leave-one-source-out)
    degrade_share: float = 0.5  # share of samples put through the blind artifact blend
    opacity_share: float = 0.0  # share of samples given synthetic airspace opacities (off: see add_opacity)
    heart_including: tuple[str, ...] = ()  # sources whose masks take in the heart: trained on a second channel

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_MARKER_TEXTS = ("L", "R", "AP", "PA", "PORTABLE", "SUPINE", "ERECT", "L SIDE", "R 1", "CHEST")


def burn_in_text(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Burn a lateral marker or technologist's text into the film, as real films carry them
    (bright, near an edge or corner, sometimes on a dark box), without touching the mask."""
    out = img.copy()
    size = img.shape[0]
    for _ in range(int(rng.integers(1, 3))):
        text = str(rng.choice(_MARKER_TEXTS))
        scale = size / 256 * rng.uniform(0.4, 1.2)
        thick = max(1, int(round(scale * rng.uniform(1.0, 2.5))))
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        x = int(rng.choice([rng.uniform(0.02, 0.2), rng.uniform(0.6, 0.95)]) * size)
        y = int(rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.75, 0.97)]) * size)
        x, y = min(max(x, 0), max(size - w, 0)), min(max(y, h), size - 1)
        if rng.random() < 0.3:
            out[max(y - h - 2, 0) : y + 4, max(x - 2, 0) : x + w + 2] = float(rng.uniform(0.0, 0.15))
        ink = np.zeros(out.shape, np.uint8)  # OpenCV draws text on 8-bit images only: draw coverage, then blend
        cv2.putText(ink, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
        alpha = ink.astype(np.float32) / 255.0
        out = out * (1.0 - alpha) + float(rng.uniform(0.85, 1.0)) * alpha
    return out.astype(np.float32)


def add_opacity(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whiten parts of the lungs toward soft-tissue brightness, as consolidation, ground glass and
    effusions do, and leave the mask as it is.

    Why: COVID-19 films often have white, airless lung; a segmenter that learnt lungs as dark
    fields outlines only the aerated part there (the worst films of the leave-one-source-out
    folds). Patches are smooth random blobs, weighted toward the lower zones where
    COVID-19 opacities mostly sit, confined to the (slightly widened) lung fields.

    Measured (leave one source out, 40 epochs at 256 px, 2026-12-03, scale range 0.8-1.2 in
    both arms), ``--opacity-share 0.4`` against 0: gbcovid left out 0.8355 -> 0.8446 (71 of 98
    films better); shenzhen left out 0.8786, against 0.8825 for the default recipe (13 of 69
    better). Below-diaphragm lung in the folds rose from 0.18 % to 0.31 % of the lung area. A
    12-epoch 320-px fine-tune of the shipped model with it
    kept its own held-out split (0.946) but lost 0.75 points on the V7 COVID-19 films and
    sometimes drew lung into the bright abdomen under the right hemidiaphragm. Hence off."""
    size = img.shape[0]
    if not mask.any():
        return img
    grid = max(4, size // 24)
    field = cv2.resize(rng.standard_normal((grid, grid)).astype(np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC)
    ys = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]
    field += float(rng.uniform(0.0, 1.5)) * (ys - 0.5)  # lower zones more often
    cover = float(rng.uniform(0.2, 0.9))  # share of lung opacified
    inside = field[mask]
    threshold = float(np.quantile(inside, 1.0 - cover))
    blob = np.clip((field - threshold) / max(float(inside.std()) * 1.5, 1e-6), 0.0, 1.0)
    lung = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=size / 80)
    blob = blob * np.clip(lung * 1.5, 0.0, 1.0)
    outside = img[~mask]
    tissue = float(np.percentile(outside, float(rng.uniform(60, 95)))) if outside.size else 0.8
    lift = max(tissue - float(img[mask].mean()), 0.1)  # added density: ribs and vessels still show through
    strength = float(rng.uniform(0.5, 1.1))
    texture = 1.0 + 0.1 * cv2.GaussianBlur(rng.standard_normal(img.shape).astype(np.float32), (0, 0), 1.5)
    # what is already as bright as the soft tissue is left alone: no bright rim traces the mask
    headroom = np.clip((tissue - img) / lift, 0.0, 1.0)
    out = img + strength * lift * blob * texture * headroom
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _augment(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, degrade_share: float = 0.5,
             opacity_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    size = img.shape[0]
    angle = rng.uniform(-12, 12)
    scale = rng.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    m[:, 2] += rng.uniform(-0.08, 0.08, 2) * size
    img = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = cv2.warpAffine(mask.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT) > 0.5
    if opacity_share and rng.random() < opacity_share:
        img = add_opacity(img, mask, rng)
    img = np.clip(img, 0, 1) ** float(np.exp(rng.uniform(-0.5, 0.5)))
    img = np.clip((img - 0.5) * rng.uniform(0.6, 1.3) + 0.5 + rng.uniform(-0.12, 0.12), 0, 1)
    if rng.random() < 0.5:
        img = burn_in_text(img.astype(np.float32), rng)
    if rng.random() < degrade_share:
        img = degrade(img.astype(np.float32), rng).image
    return img.astype(np.float32), mask


class SegTrainer:
    def __init__(self, config: SegConfig, train: list[MaskPair], run_dir: Path, device: torch.device) -> None:
        if not train:
            raise TrainingError(run_dir, "no training pairs")
        self.config, self.run_dir, self.device = config, Path(run_dir), device
        torch.manual_seed(config.seed)
        self.heart_including = [p.dataset in config.heart_including for p in train]
        self.channels = 2 if any(self.heart_including) else 1
        self.model = build_segmenter()
        if config.init_from:
            from core.weights.model_file import load_into, load_state

            state, _ = load_state(config.init_from)
            load_into(self.model, state, config.init_from)
        if self.channels == 2:  # the second channel starts as a copy of the first
            state = self.model.state_dict()
            self.model = build_segmenter(2)
            for key in head_keys(state):
                state[key] = torch.cat([state[key], state[key]])
            self.model.load_state_dict(state)
        self.model.to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.dice = smp.losses.DiceLoss(mode="binary", from_logits=True)
        size = config.size
        self.images = [cv2.resize(read_gray(p.image), (size, size), interpolation=cv2.INTER_AREA) for p in train]
        self.masks = [read_mask(p.mask, (size, size)) for p in train]
        self.step = 0

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.images) // self.config.batch_size)

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        """Short linear warm-up, then cosine decay to 1 % of the base rate."""
        warm = self.steps_per_epoch
        if step < warm:
            return self.config.lr * (step + 1) / warm
        t = (step - warm) / max(self.total_steps - warm, 1)
        return self.config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, targets, weights); targets and weights have one channel per output. A
        standard mask is a full label for channel 0 and says nothing to channel 1; a
        heart-including mask is a full label for channel 1 and a partial one for channel 0."""
        epoch, within = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.images))
        rng = np.random.default_rng([self.config.seed, epoch, within, 0x5E6])
        idx = order[within * self.config.batch_size : (within + 1) * self.config.batch_size]
        xs, ys, ws = [], [], []
        for i in idx:
            img, mask = _augment(self.images[i], self.masks[i], rng, self.config.degrade_share,
                                 self.config.opacity_share)
            xs.append(to_segmenter_input(img, self.config.size))
            full, none = mask.astype(np.float32), np.zeros(mask.shape, np.float32)
            if self.channels == 1:
                ys.append(full[None])
                ws.append(np.ones_like(full)[None])
            elif self.heart_including[i]:
                target, weight = standard_hint(mask)
                ys.append(np.stack([target, full]))
                ws.append(np.stack([weight, np.ones_like(full)]))
            else:
                ys.append(np.stack([full, none]))
                ws.append(np.stack([np.ones_like(full), none]))
        to = lambda a: torch.from_numpy(np.stack(a)).to(self.device)  # noqa: E731
        return to(xs), to(ys), to(ws)

    def _dice_loss(self, logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Soft Dice per channel over the samples fully labelled for it, averaged over channels."""
        if self.channels == 1:
            return self.dice(logits, y)
        losses = []
        for c in range(self.channels):
            full = w[:, c].flatten(1).min(dim=1).values > 0.5
            if full.any():
                losses.append(self.dice(logits[full, c : c + 1], y[full, c : c + 1]))
        return torch.stack(losses).mean()

    def train_step(self) -> dict[str, float]:
        x, y, w = self.batch(self.step)
        lr = self.lr_at(self.step)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.model.train()
        logits = self.model(x)
        dice = self._dice_loss(logits, y, w)
        bce = (F.binary_cross_entropy_with_logits(logits, y, reduction="none") * w).sum() / w.sum().clamp_min(1.0)
        loss = dice + bce
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"loss": float(loss.detach()), "dice_loss": float(dice.detach()), "bce": float(bce.detach()), "lr": lr}

    def save(self) -> Path:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        opt_t, opt_s = optimizer_tensors("opt", self.opt)
        tensors |= opt_t
        tensors["torch_rng"] = torch.get_rng_state()
        return save_checkpoint(self.run_dir, self.step, tensors,
                               {"step": self.step, "config": self.config.to_json(), "opt": opt_s})

    def resume(self) -> bool:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return False
        tensors, state = load_checkpoint(path)
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        load_optimizer("opt", self.opt, tensors, state["opt"])
        torch.set_rng_state(tensors["torch_rng"])
        self.step = int(state["step"])
        return True

    def export(self, out_dir: Path, extra: dict | None = None) -> Manifest:
        manifest = Manifest(
            variant_id=SEGMENTER_ID, display_name="Lung U-Net (DenseNet-121)", kind="segmenter",
            architecture=SEGMENTER_ARCH, input_size=self.config.size,
            provenance={"source": "trained by R2C Review's own code (r2c-review train-seg)",
                        "command": command_line(),
                        "hardware": hardware(),
                        "step": self.step, "epochs_done": round(self.step / self.steps_per_epoch, 2),
                        "config": self.config.to_json(),
                        "licence": "research use only (public data under mixed licences incl. CC BY-NC-SA)",
                        **(extra or {})},
        )
        return save_model(out_dir / f"{SEGMENTER_ID}.safetensors", self.standard_state(), manifest)

    def standard_state(self) -> dict[str, torch.Tensor]:
        """The model's weights with the standard channel only: the shipped one-output architecture."""
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        for key in head_keys(state):
            state[key] = state[key][:1]
        return state

    def fit(self, max_steps: int | None = None, progress: bool = True, on_checkpoint=None) -> int:
        from tqdm import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.config.to_json(), indent=1))
        end = self.total_steps if max_steps is None else min(self.total_steps, self.step + max_steps)
        log_path = self.run_dir / "metrics.csv"
        new = not log_path.exists()
        done = 0
        with open(log_path, "a", newline="") as f, tqdm(total=end, initial=self.step, disable=not progress,
                                                        desc="train-seg", unit="step", dynamic_ncols=True) as bar:
            writer = csv.DictWriter(f, fieldnames=["step", "epoch", "lr", "seconds", "loss", "dice_loss", "bce"])
            if new:
                writer.writeheader()
            while self.step < end:
                t0 = time.perf_counter()
                losses = self.train_step()
                done += 1
                writer.writerow({"step": self.step, "epoch": (self.step - 1) // self.steps_per_epoch,
                                 "seconds": round(time.perf_counter() - t0, 3),
                                 **{k: round(v, 6) for k, v in losses.items()}})
                bar.update(1)
                bar.set_postfix(loss=f"{losses['loss']:.3f}", refresh=False)
                if self.step % self.config.checkpoint_every == 0 or self.step == end:
                    f.flush()
                    self.save()
                    if on_checkpoint:
                        on_checkpoint(self)
        return done


def run_seg_training(config: SegConfig, data_dir: Path, run_dir: Path, device: torch.device,
                     max_steps: int | None = None, progress: bool = True) -> SegTrainer:
    # a source named heart-including is trained (on its own channel) even where it is also excluded
    pairs = [p for p in read_mask_folder(data_dir)
             if p.dataset not in config.exclude or p.dataset in config.heart_including]
    if config.leave_out:
        known = sorted({p.dataset for p in pairs})
        if config.leave_out not in known:
            raise TrainingError(data_dir, f"no source {config.leave_out!r} to leave out (sources: {', '.join(known)})")
        kin = SAME_COLLECTION.get(config.leave_out, ())  # other outlines of the same hospitals' films
        train = [p for p in pairs if p.dataset != config.leave_out and p.dataset not in kin]
        test = [p for p in pairs if p.dataset == config.leave_out]
    else:
        train, test = split_masks(pairs, config.test_fraction, config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "split.json").write_text(json.dumps({"train": [p.image.name for p in train],
                                                    "test": [p.image.name for p in test],
                                                    "excluded": list(config.exclude)}, indent=1))
    trainer = SegTrainer(config, train, run_dir, device)
    trainer.resume()
    extra = {"training_data": f"{data_dir} ({len(train)} pairs; {', '.join(sorted({p.dataset for p in train}))})"}
    trainer.fit(max_steps=max_steps, progress=progress,
                on_checkpoint=lambda t: t.export(run_dir / "model", extra))
    if config.leave_out and trainer.step >= trainer.total_steps:
        measure_left_out(trainer, test, run_dir / "loso.json")
    return trainer


def measure_left_out(trainer: SegTrainer, pairs: list[MaskPair], out: Path) -> dict[str, Any]:
    """Figures of the finished leave-one-source-out model on every pair of the left-out source,
    with the app's post-processing (two largest components), worst films first."""
    record = measure_fold(trainer.run_dir / "model" / f"{SEGMENTER_ID}.safetensors", pairs, trainer.device)
    record |= {"left_out": trainer.config.leave_out, "steps": trainer.step, "epochs": trainer.config.epochs,
               "size": trainer.config.size}
    out.write_text(json.dumps(record, indent=1))
    return record


def measure_fold(model: Path, pairs: list[MaskPair], device: torch.device) -> dict[str, Any]:
    """Dice, precision, recall and area ratio per film and on average; against heart-including
    outlines also the Dice where both conventions agree (``core.train.conventions``). A one-sided
    error (precision near 1 with low recall, or the reverse) on every film is a convention gap,
    not a model failure."""
    from core.segment import LungSegmenter

    segmenter = LungSegmenter(model, device)
    films = []
    for pair in pairs:
        image = read_gray(pair.image)
        figures = mask_figures(segmenter.segment(image).mask, read_mask(pair.mask, image.shape),
                               pair.dataset in HEART_INCLUDING)
        films.append({"file": pair.image.name, **{k: round(v, 4) for k, v in figures.items() if k != "iou"}})
    films.sort(key=lambda f: f["dice"])
    record: dict[str, Any] = {"n": len(films), **mean_figures(films, 4), "flip_average": segmenter.flip_average}
    record["dice_median"] = round(float(np.median([f["dice"] for f in films])), 4)
    return record | {"worst": films[:5], "films": films}


def loso_summary(run_dirs: list[Path]) -> dict[str, Any]:
    """The leave-one-source-out figures of finished ``train-seg --leave-out`` runs, one fold per run:
    per left-out source its Dice (mean, median, worst films) and the mean over sources, which is
    the figure a new hospital would meet (each source counts once, whatever its size)."""
    folds = []
    for run in run_dirs:
        path = Path(run) / "loso.json"
        if not path.is_file():
            raise TrainingError(path, "no leave-one-source-out result: the run is unfinished or was not started "
                                      "with --leave-out")
        try:
            r = json.loads(path.read_text())
            fold = {"left_out": str(r["left_out"]), "n": int(r["n"]), "dice": float(r["dice"]),
                    "dice_median": float(r["dice_median"]), "worst": list(r["worst"])[:3],
                    "steps": int(r["steps"]), "epochs": r.get("epochs"), "size": r.get("size")}
            fold |= {k: float(r[k]) for k in ("precision", "recall", "area_ratio", "agreed_dice") if k in r}
            fold["flip_average"] = bool(r.get("flip_average", False))  # folds measured before it existed: False
            cfg_path = Path(run) / "config.json"
            config = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
            fold["heart_including"] = list(config.get("heart_including", []))
            folds.append(fold)
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainingError(path, f"not a leave-one-source-out result ({exc})") from None
    if len({f["left_out"] for f in folds}) != len(folds):
        raise TrainingError(Path(run_dirs[0]).parent, "two runs left out the same source")
    films = sum(f["n"] for f in folds)
    fair = [f.get("agreed_dice", f["dice"]) for f in folds]
    return {"folds": folds, "mean_dice": round(float(np.mean([f["dice"] for f in folds])), 4),
            "mean_convention_fair_dice": round(float(np.mean(fair)), 4),
            "film_weighted_dice": round(sum(f["dice"] * f["n"] for f in folds) / films, 4) if films else None,
            "method": "trained from scratch with the current train-seg recipe on every source but one (and any other "
                      "outlines of the same films), measured on all films of the one left out, with the app's "
                      "inference (two-lung post-processing; left-right mirror averaging where the table says so); "
                      "the convention-fair mean uses, for a heart-including source, the Dice over the pixels both "
                      "conventions agree on"}


def remeasure_fold(run_dir: Path, data_dir: Path, device: torch.device) -> dict[str, Any]:
    """Measure a finished leave-one-source-out run again with the current figures, on the films its
    ``split.json`` held out, and rewrite its ``loso.json`` (keeping how it was trained)."""
    run_dir = Path(run_dir)
    try:
        old = json.loads((run_dir / "loso.json").read_text())
        held = set(json.loads((run_dir / "split.json").read_text())["test"])
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingError(run_dir, f"not a finished leave-one-source-out run ({exc})") from None
    pairs = [p for p in read_mask_folder(data_dir) if p.image.name in held]
    record = measure_fold(run_dir / "model" / f"{SEGMENTER_ID}.safetensors", pairs, device)
    record |= {k: old[k] for k in ("left_out", "steps", "epochs", "size") if k in old}
    (run_dir / "loso.json").write_text(json.dumps(record, indent=1))
    return record

"""R2C-GAN training: unpaired poor-quality (A) <-> high-quality (B) CycleGAN with class heads.

Faithful to the authors' ``train.py`` (facts in ../shared/README.md): both generators and
both discriminators, least-squares GAN losses, cycle (x10) and identity (x5) L1 losses,
cross-entropy of each generator's class head against its input case's label weighted
0.1 / 0.01 / 0.02 inside the adversarial / cycle / identity terms, Adam 2e-4 with
beta1 0.5, learning rate constant then linearly decayed to zero, pool of 50 generated
images for the discriminators, images loaded at 286x286, randomly cropped to 256 and
flipped left-right, scaled to [-1, 1], gray replicated to 3 channels.

Reproducibility: every random choice of step ``s`` of epoch ``e`` (data order,
augmentation, degradation, pool) comes from a generator seeded with ``(seed, e, s)``,
so a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.degrade import degrade
from core.errors import TrainingError
from core.models import ResidualRestorer, build_discriminator, build_generator, check_arch, file_state, wrap_output
from core.models.upsampling import balance_model
from core.train.checkpoint import load_latest_checked, load_optimizer, optimizer_tensors, save_checkpoint
from core.train.data import LabeledImage
from core.train.domains import DomainPlan

log = logging.getLogger(__name__)


@dataclass
class GanConfig:
    arch: str
    q: int | None = None
    epochs: int = 2000
    decay_epoch: int = 100  # learning rate constant before, linearly to zero at ``epochs``
    lr: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 1
    load_size: int = 286
    crop_size: int = 256
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    cls_adv_weight: float = 0.1
    cls_cycle_weight: float = 0.01
    cls_identity_weight: float = 0.02
    pool_size: int = 50
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 250
    # Order of the operational discriminators; None: the generator's Q, as the authors do. With Q=5
    # that discriminator diverged in our runs (its x^5 terms of unbounded features drove the
    # LSGAN loss to 1e8 within ten steps), so the Q=5 bundled run uses Q=3 discriminators.
    disc_q: int | None = None
    # "paper": the authors' objective unchanged. "paired-cyclegan": the second stage of the bundled
    # recipe: the same objective started from a paired warm start (``init_from``, core/train/paired.py)
    # plus ``paired_weight`` x L1(G_A2B(degraded B), B), which keeps the restoration anchored.
    recipe: str = "paper"
    output_mode: str = "absolute"
    paired_weight: float = 0.0
    init_from: str | None = None
    balance_upsampling: bool = False  # core/models/upsampling.py; the bundled recipe turns it on

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ImagePool:
    """The CycleGAN history pool: the discriminator also sees older fakes, which stabilises training."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            if len(self.items) < self.size:
                self.items.append(img.clone())
                out.append(img)
            elif rng.random() > 0.5:
                i = int(rng.integers(len(self.items)))
                out.append(self.items[i].clone())
                self.items[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)


@dataclass
class GanData:
    """Images of both domains, preloaded at load size (gray float32 in [0, 1]) with their labels."""

    a_images: list[np.ndarray]
    a_labels: list[int]
    a_degrade: list[bool]  # True: a clean image to degrade on the fly
    b_images: list[np.ndarray]
    b_labels: list[int]

    @classmethod
    def from_plan(cls, plan: DomainPlan, items: list[LabeledImage], load_size: int,
                  reader: Callable[[Path], np.ndarray]) -> GanData:
        by_name = {it.name: it for it in items}

        def load(name: str) -> np.ndarray:
            img = reader(by_name[name].path)
            return cv2.resize(img, (load_size, load_size), interpolation=cv2.INTER_AREA)

        a_names = plan.train_poor + plan.train_degraded
        return cls(
            a_images=[load(n) for n in a_names],
            a_labels=[by_name[n].label for n in a_names],
            a_degrade=[False] * len(plan.train_poor) + [True] * len(plan.train_degraded),
            b_images=[load(n) for n in plan.train_clean],
            b_labels=[by_name[n].label for n in plan.train_clean],
        )

    @property
    def steps_per_epoch_images(self) -> int:
        return max(len(self.a_images), len(self.b_images))


def _augment(img: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    out = img[y : y + crop, x : x + crop]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def _to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(batch)).float()[:, None] * 2.0 - 1.0
    return x.repeat(1, 3, 1, 1)


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))


def lsgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(fake, torch.ones_like(fake))


class GanTrainer:
    """Owns the four networks, their optimizers and pools; trains, samples and checkpoints."""

    LOSS_NAMES = ("g_total", "adv_a2b", "adv_b2a", "cyc_a", "cyc_b", "id_a", "id_b",
                  "ce_a2b", "ce_b2a", "ce_a2b2a", "ce_b2a2b", "ce_a2a", "ce_b2b", "paired", "d_a", "d_b")

    def __init__(self, config: GanConfig, data: GanData, run_dir: Path, device: torch.device) -> None:
        check_arch(config.arch, config.q)
        self.config, self.data, self.run_dir, self.device = config, data, Path(run_dir), device
        torch.manual_seed(config.seed)
        # The bare generators (saved, exported) and the networks as run (with their output mode).
        self.net_A2B = build_generator(config.arch, config.q)
        self.net_B2A = build_generator(config.arch, config.q)
        self.G_A2B = wrap_output(self.net_A2B, config.output_mode)
        self.G_B2A = wrap_output(self.net_B2A, config.output_mode)
        if config.init_from:
            self._init_from(Path(config.init_from))
        if config.balance_upsampling:
            balance_model(self.net_A2B)
            balance_model(self.net_B2A)
        self.G_A2B.to(device)
        self.G_B2A.to(device)
        disc_q = config.disc_q if config.disc_q is not None else config.q
        self.D_A = build_discriminator(config.arch, disc_q).to(device)
        self.D_B = build_discriminator(config.arch, disc_q).to(device)
        betas = (config.beta1, 0.999)
        self.opt_G = torch.optim.Adam([*self.G_A2B.parameters(), *self.G_B2A.parameters()], lr=config.lr, betas=betas)
        self.opt_D = torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], lr=config.lr, betas=betas)
        self.pool_A2B, self.pool_B2A = ImagePool(config.pool_size), ImagePool(config.pool_size)
        self.step = 0  # optimisation steps done
        self.on_checkpoint: Callable[[GanTrainer], None] | None = None  # e.g. export the app model file
        self.amp = device.type == "cuda"
        if len(data.a_images) == 0 or len(data.b_images) == 0:
            raise TrainingError(run_dir, "both domains need at least one image")

    def _init_from(self, path: Path) -> None:
        """Both generators start from one model file (the paired warm start): A2B restores, and
        B2A starts as the same near-identity map and learns to degrade."""
        from core.restore import load_generator_state
        from core.weights.model_file import load_state

        state, manifest = load_state(path)
        if (manifest.architecture, manifest.q) != (self.config.arch, self.config.q):
            raise TrainingError(path, f"holds {manifest.architecture} q={manifest.q}, "
                                      f"not {self.config.arch} q={self.config.q}")
        for g in (self.G_A2B, self.G_B2A):
            load_generator_state(g, state, path, require_tone=False)
            if isinstance(g, ResidualRestorer) and manifest.output_mode != "residual":
                g.zero_output()

    # ----- schedule -------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return -(-self.data.steps_per_epoch_images // self.config.batch_size)

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        decay_start = self.config.decay_epoch * self.steps_per_epoch
        if step < decay_start:
            return self.config.lr
        span = max(self.total_steps - decay_start, 1)
        return self.config.lr * max(0.0, 1.0 - (step - decay_start) / span)

    # ----- data -----------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, epoch, 0xE90C])
        n = self.data.steps_per_epoch_images
        a = np.concatenate([rng.permutation(len(self.data.a_images)) for _ in range(-(-n // len(self.data.a_images)))])
        b = np.concatenate([rng.permutation(len(self.data.b_images)) for _ in range(-(-n // len(self.data.b_images)))])
        return a[:n], b[:n]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, np.random.Generator]:
        """(A, B, label A, label B, rng); ``self.last_b_degraded`` holds degraded copies of B for the paired term."""
        epoch, within = divmod(step, self.steps_per_epoch)
        rng = np.random.default_rng([self.config.seed, epoch, within])
        order_a, order_b = self._epoch_order(epoch)
        bs = self.config.batch_size
        ia = order_a[within * bs : (within + 1) * bs]
        ib = order_b[within * bs : (within + 1) * bs]
        a_imgs, b_imgs = [], []
        for i in ia:
            img = self.data.a_images[i]
            if self.data.a_degrade[i]:
                img = degrade(img, rng).image
            a_imgs.append(_augment(img, self.config.crop_size, rng))
        for i in ib:
            b_imgs.append(_augment(self.data.b_images[i], self.config.crop_size, rng))
        self.last_b_degraded = None
        if self.config.paired_weight:
            self.last_b_degraded = _to_tensor([degrade(b, rng).image for b in b_imgs]).to(self.device)
        la = torch.tensor([self.data.a_labels[i] for i in ia], dtype=torch.long)
        lb = torch.tensor([self.data.b_labels[i] for i in ib], dtype=torch.long)
        dev = self.device
        return _to_tensor(a_imgs).to(dev), _to_tensor(b_imgs).to(dev), la.to(dev), lb.to(dev), rng

    # ----- losses and one optimisation step ----------------------------------------------
    def generator_losses(self, A: torch.Tensor, B: torch.Tensor, label_a: torch.Tensor, label_b: torch.Tensor
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The authors' L_G, its parts, and the two translated batches (A2B, B2A)."""
        cfg = self.config
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            A2B, A2B_cls = self.G_A2B.forward_logits(A)
            B2A, B2A_cls = self.G_B2A.forward_logits(B)
            A2B2A, A2B2A_cls = self.G_B2A.forward_logits(A2B)
            B2A2B, B2A2B_cls = self.G_A2B.forward_logits(B2A)
            A2A, A2A_cls = self.G_B2A.forward_logits(A)
            B2B, B2B_cls = self.G_A2B.forward_logits(B)
            adv_a2b = lsgan_g_loss(self.D_B(A2B).float())
            adv_b2a = lsgan_g_loss(self.D_A(B2A).float())
        parts = {"adv_a2b": adv_a2b, "adv_b2a": adv_b2a,
                 "cyc_a": F.l1_loss(A2B2A.float(), A), "cyc_b": F.l1_loss(B2A2B.float(), B),
                 "id_a": F.l1_loss(A2A.float(), A), "id_b": F.l1_loss(B2B.float(), B)}
        # Each generator's class head predicts the label of its input image's case.
        for name, logits, label in (("ce_a2b", A2B_cls, label_a), ("ce_b2a", B2A_cls, label_b),
                                    ("ce_a2b2a", A2B2A_cls, label_a), ("ce_b2a2b", B2A2B_cls, label_b),
                                    ("ce_a2a", A2A_cls, label_a), ("ce_b2b", B2B_cls, label_b)):
            parts[name] = F.cross_entropy(logits.float(), label)
        parts["paired"] = A.new_zeros(())
        if cfg.paired_weight and self.last_b_degraded is not None:
            restored, _ = self.G_A2B.forward_logits(self.last_b_degraded)
            parts["paired"] = F.l1_loss(restored.float(), B)
        p = parts
        total = (
            p["adv_a2b"] + p["adv_b2a"] + cfg.cls_adv_weight * (p["ce_a2b"] + p["ce_b2a"])
            + cfg.cycle_weight * (p["cyc_a"] + p["cyc_b"] + cfg.cls_cycle_weight * (p["ce_a2b2a"] + p["ce_b2a2b"]))
            + cfg.identity_weight * (p["id_a"] + p["id_b"] + cfg.cls_identity_weight * (p["ce_a2a"] + p["ce_b2b"]))
            + cfg.paired_weight * p["paired"]
        )
        return total, parts, A2B, B2A

    def discriminator_losses(self, A: torch.Tensor, B: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            d_a = lsgan_d_loss(self.D_A(A).float(), self.D_A(fake_a).float())
            d_b = lsgan_d_loss(self.D_B(B).float(), self.D_B(fake_b).float())
        return d_a, d_b

    def train_step(self) -> dict[str, float]:
        A, B, label_a, label_b, rng = self.batch(self.step)
        lr = self.lr_at(self.step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        g_total, parts, A2B, B2A = self.generator_losses(A, B, label_a, label_b)
        self.opt_G.zero_grad(set_to_none=True)
        g_total.backward()
        self.opt_G.step()
        if self.config.balance_upsampling:
            balance_model(self.net_A2B)
            balance_model(self.net_B2A)
        # Discriminators see pooled fakes (the history pool stabilises training).
        fake_b = self.pool_A2B.query(A2B.detach().float(), rng)
        fake_a = self.pool_B2A.query(B2A.detach().float(), rng)
        d_a, d_b = self.discriminator_losses(A, B, fake_a, fake_b)
        self.opt_D.zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        self.opt_D.step()
        self.step += 1
        losses = {"g_total": g_total, **parts, "d_a": d_a, "d_b": d_b}
        return {k: float(v.detach()) for k, v in losses.items()} | {"lr": lr}

    # ----- checkpoints ------------------------------------------------------------------
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        for name, g in (("G_A2B", self.G_A2B), ("G_B2A", self.G_B2A)):
            tensors |= {f"{name}.{k}": v for k, v in file_state(g).items()}
        for name, model in (("D_A", self.D_A), ("D_B", self.D_B)):
            tensors |= {f"{name}.{k}": v for k, v in model.state_dict().items()}
        g_t, g_s = optimizer_tensors("opt_G", self.opt_G)
        d_t, d_s = optimizer_tensors("opt_D", self.opt_D)
        tensors |= g_t | d_t
        for name, pool in (("pool_A2B", self.pool_A2B), ("pool_B2A", self.pool_B2A)):
            if pool.items:
                tensors[name] = torch.stack(pool.items)
        tensors["torch_rng"] = torch.get_rng_state()
        state = {"step": self.step, "config": self.config.to_json(), "opt_G": g_s, "opt_D": d_s}
        return tensors, state

    def save(self) -> Path:
        tensors, state = self.state_tensors()
        return save_checkpoint(self.run_dir, self.step, tensors, state)

    def resume(self) -> bool:
        found = load_latest_checked(self.run_dir, self.config,
                                    ("arch", "q", "batch_size", "seed", "crop_size", "load_size", "output_mode"))
        if found is None:
            return False
        path, tensors, state = found
        from core.restore import load_generator_state

        for name, g in (("G_A2B", self.G_A2B), ("G_B2A", self.G_B2A)):
            load_generator_state(g, {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")},
                                 path)
        for name, model in (("D_A", self.D_A), ("D_B", self.D_B)):
            model.load_state_dict({k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")})
        load_optimizer("opt_G", self.opt_G, tensors, state["opt_G"])
        load_optimizer("opt_D", self.opt_D, tensors, state["opt_D"])
        for name, pool in (("pool_A2B", self.pool_A2B), ("pool_B2A", self.pool_B2A)):
            pool.items = [t.to(self.device) for t in tensors[name]] if name in tensors else []
        torch.set_rng_state(tensors["torch_rng"])
        self.step = int(state["step"])
        log.info("resumed %s at step %d", path, self.step)
        return True

    # ----- samples and the loop ---------------------------------------------------------
    @torch.no_grad()
    def save_samples(self) -> Path:
        """A grid: rows A | A2B | A2B2A and B | B2A | B2A2B for a few fixed images."""
        self.G_A2B.eval(), self.G_B2A.eval()
        rng = np.random.default_rng([self.config.seed, 0x5A])
        rows = []
        for images, g1, g2 in ((self.data.a_images, self.G_A2B, self.G_B2A),
                               (self.data.b_images, self.G_B2A, self.G_A2B)):
            idx = rng.choice(len(images), size=min(4, len(images)), replace=False)
            crop = self.config.crop_size
            x = _to_tensor([cv2.resize(images[i], (crop, crop), interpolation=cv2.INTER_AREA) for i in idx])
            x = x.to(self.device)
            y, _ = g1(x)
            z, _ = g2(y)
            for t in (x, y, z):
                rows.append(np.hstack([(im[0].float().cpu().numpy() + 1) / 2 for im in t]))
        self.G_A2B.train(), self.G_B2A.train()
        grid = (np.clip(np.vstack(rows), 0, 1) * 255).astype(np.uint8)
        out = self.run_dir / "samples" / f"step-{self.step:08d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), grid)
        return out

    def fit(self, max_steps: int | None = None, progress: bool = True,
            cancelled: Callable[[], bool] | None = None, max_seconds: float | None = None) -> int:
        """Train until the configured epochs end (or ``max_steps`` more steps); returns steps done now."""
        from tqdm import tqdm

        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(self.config.to_json(), indent=1))
        end = self.total_steps if max_steps is None else min(self.total_steps, self.step + max_steps)
        log_path = self.run_dir / "metrics.csv"
        new_log = not log_path.exists()
        done, started = 0, time.monotonic()
        with open(log_path, "a", newline="") as f, tqdm(total=end, initial=self.step, disable=not progress,
                                                        desc=f"train {self.config.arch} q={self.config.q}",
                                                        unit="step", dynamic_ncols=True) as bar:
            writer = csv.DictWriter(f, fieldnames=["step", "epoch", "lr", "seconds", *self.LOSS_NAMES])
            if new_log:
                writer.writeheader()
            while self.step < end:
                if (cancelled and cancelled()) or (max_seconds and time.monotonic() - started > max_seconds):
                    break
                t0 = time.perf_counter()
                losses = self.train_step()
                done += 1
                writer.writerow({"step": self.step, "epoch": (self.step - 1) // self.steps_per_epoch,
                                 "seconds": round(time.perf_counter() - t0, 4),
                                 **{k: round(v, 6) for k, v in losses.items()}})
                bar.update(1)
                bar.set_postfix(G=f"{losses['g_total']:.3f}", cyc=f"{losses['cyc_a']:.3f}",
                                D=f"{losses['d_a'] + losses['d_b']:.3f}", refresh=False)
                if self.step % self.config.checkpoint_every == 0 or self.step == end:
                    f.flush()
                    self.save()
                    if self.on_checkpoint:
                        self.on_checkpoint(self)
                if self.config.sample_every and self.step % self.config.sample_every == 0:
                    self.save_samples()
            if done and self.step % self.config.checkpoint_every != 0 and self.step != end:
                self.save()  # stopped by time or cancel: keep what was learnt
                if self.on_checkpoint:
                    self.on_checkpoint(self)
        return done

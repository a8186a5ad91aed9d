"""``r2c-review train-pix2pix``: a pix2pix translating normal films into COVID-19-like ones.

As Liang et al. (IEEE BIBM 2020) train it: normal (no-finding) films are the inputs, COVID-19
films the targets, and since no patient has both, each step pairs a random normal film with a
random COVID-19 film (unpaired random pairing). Generator loss = adversarial (the conditional
discriminator on (input, output)) + 100 x L1 to the COVID-19 film; discriminator loss = binary
cross-entropy on (input, COVID-19 film) vs (input, generated film), halved (pix2pix). Adam
(2e-4, beta1 0.5), constant for the first half of the epochs and linearly decayed to 0 over the
second. Augmentation: random horizontal flip and a rotation of up to 5 degrees, drawn
independently for input and target.

Films are squashed to 224x224 as in the paper. The split is by patient (``core/train/cxr3.py``);
test patients are never seen. Every random choice of step ``s`` comes from a generator seeded
with ``(seed, s)``, so a resumed run continues exactly. The run folder: ``config.json``,
``split.json``, ``metrics.csv``, ``checkpoints/`` (resumable, no pickle) and, after every
checkpoint, ``model/pix2pix-covid.safetensors`` (float32; ``publish`` writes float16).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.errors import TrainingError
from core.models.pix2pix import (
    IMAGE_SIZE,
    SYNTH_ARCH,
    SYNTH_ID,
    ConditionalPatchDiscriminator,
    build_pix2pix_generator,
    inference_mode,
    init_weights,
)
from core.train.checkpoint import load_latest_checked, load_optimizer, optimizer_tensors, save_checkpoint
from core.train.cxr3 import COVID19, NORMAL, by_class, patient_split, read_three_class
from core.train.gan_run import command_line
from core.weights.model_file import Manifest, save_model

log = logging.getLogger(__name__)

LICENCE = ("research use only (trained on public data under mixed licences incl. CC BY-NC); synthetic films "
           "only for studying whether readers can tell them from real ones, never for diagnosis or training "
           "clinical models")


@dataclass
class Pix2PixConfig:
    size: int = IMAGE_SIZE
    base: int = 64
    depth: int = 5
    dropout: float = 0.5
    batch_size: int = 1
    epochs: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    rotate_deg: float = 5.0
    test_fraction: float = 0.15
    seed: int = 0
    checkpoint_every: int = 200
    amp: bool | None = None  # bfloat16 autocast; None: on CUDA only

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# checkpoint values that must not change when a run is resumed
RESUME_KEYS = ("size", "base", "depth", "dropout", "batch_size", "seed", "test_fraction", "l1_weight")


def load_film(path: Path, size: int) -> np.ndarray:
    from core.train.data import read_gray

    return cv2.resize(read_gray(path), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def augment(img: np.ndarray, rng: np.random.Generator, degrees: float) -> np.ndarray:
    """Random horizontal flip and rotation in [-degrees, degrees] (edges replicated)."""
    if rng.random() < 0.5:
        img = img[:, ::-1]
    angle = float(rng.uniform(-degrees, degrees)) if degrees else 0.0
    if angle:
        h, w = img.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(img)


def to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    """Gray films in [0, 1] -> (N, 3, H, W) in [-1, 1] (the paper's three channels)."""
    return (torch.from_numpy(np.stack(batch)).float()[:, None] * 2.0 - 1.0).repeat(1, 3, 1, 1)


@dataclass
class Pix2PixData:
    inputs: list[np.ndarray]  # normal films
    targets: list[np.ndarray]  # COVID-19 films

    def __post_init__(self) -> None:
        if not self.inputs or not self.targets:
            raise TrainingError(None, "pix2pix needs at least one normal and one COVID-19 training film")


class Pix2PixTrainer:
    def __init__(self, config: Pix2PixConfig, data: Pix2PixData, run_dir: Path, device: torch.device) -> None:
        self.config, self.data, self.run_dir, self.device = config, data, Path(run_dir), device
        torch.manual_seed(config.seed)
        self.G = build_pix2pix_generator(config.base, config.depth, config.dropout).to(device)
        self.D = ConditionalPatchDiscriminator().to(device)
        init_weights(self.G)
        init_weights(self.D)
        betas = (config.beta1, 0.999)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
        self.step = 0
        self.seconds = 0.0  # training time over all sessions of the run
        self.amp = device.type == "cuda" if config.amp is None else config.amp
        self.steps_per_epoch = max(1, math.ceil(max(len(data.inputs), len(data.targets)) / config.batch_size))
        self.total_steps = config.epochs * self.steps_per_epoch
        self.on_checkpoint: Callable[[Pix2PixTrainer], None] | None = None

    def lr_at(self, step: int) -> float:
        half = self.total_steps // 2
        if step < half:
            return self.config.lr
        return self.config.lr * max(0.0, 1.0 - (step - half) / max(self.total_steps - half, 1))

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.config.seed, step])
        n = self.config.batch_size
        xs = [augment(self.data.inputs[int(i)], rng, self.config.rotate_deg)
              for i in rng.integers(0, len(self.data.inputs), n)]
        ys = [augment(self.data.targets[int(i)], rng, self.config.rotate_deg)
              for i in rng.integers(0, len(self.data.targets), n)]
        return to_tensor(xs).to(self.device), to_tensor(ys).to(self.device)

    def train_step(self) -> dict[str, float]:
        x, y = self.batch(self.step)
        torch.manual_seed(self.config.seed * 1_000_003 + self.step)  # dropout: reproducible on resume
        lr = self.lr_at(self.step)
        for opt in (self.opt_G, self.opt_D):
            for g in opt.param_groups:
                g["lr"] = lr
        ctx = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)
        self.G.train()
        self.D.train()
        with ctx:
            fake = self.G(x)
        # discriminator
        self.opt_D.zero_grad(set_to_none=True)
        with ctx:
            real_logits = self.D(x, y).float()
            fake_logits = self.D(x, fake.detach()).float()
        loss_d = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        loss_d.backward()
        self.opt_D.step()
        # generator
        self.opt_G.zero_grad(set_to_none=True)
        with ctx:
            logits = self.D(x, fake).float()
        adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        l1 = F.l1_loss(fake.float(), y)
        loss_g = adv + self.config.l1_weight * l1
        loss_g.backward()
        self.opt_G.step()
        self.step += 1
        return {"loss_d": loss_d.item(), "loss_g_adv": adv.item(), "loss_l1": l1.item(), "lr": lr,
                "d_real": torch.sigmoid(real_logits.detach()).mean().item(),
                "d_fake": torch.sigmoid(fake_logits.detach()).mean().item()}

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self) -> Path:
        tensors: dict[str, torch.Tensor] = {}
        for prefix, model in (("G", self.G), ("D", self.D)):
            tensors.update({f"{prefix}.{k}": v for k, v in model.state_dict().items()})
        scalars: dict[str, Any] = {}
        for prefix, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            t, s = optimizer_tensors(prefix, opt)
            tensors.update(t)
            scalars[prefix] = s
        state = {"step": self.step, "seconds": self.seconds, "config": self.config.to_json(), "optimizers": scalars}
        path = save_checkpoint(self.run_dir, self.step, tensors, state)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)
        return path

    def resume(self) -> bool:
        found = load_latest_checked(self.run_dir, self.config, RESUME_KEYS)
        if found is None:
            return False
        path, tensors, state = found
        for prefix, model in (("G", self.G), ("D", self.D)):
            own = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            model.load_state_dict(own)
        for prefix, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            load_optimizer(prefix, opt, tensors, state["optimizers"][prefix])
        self.step = int(state["step"])
        self.seconds = float(state.get("seconds", 0.0))
        log.info("resumed %s at step %d", path, self.step)
        return True

    def fit(self, max_steps: int | None = None, max_seconds: float | None = None, progress: bool = True) -> None:
        from tqdm import tqdm

        end = self.total_steps if max_steps is None else min(self.total_steps, self.step + max_steps)
        start = time.monotonic()
        log_path = self.run_dir / "metrics.csv"
        fields = ["step", "epoch", "seconds", "loss_d", "loss_g_adv", "loss_l1", "d_real", "d_fake", "lr"]
        new = not log_path.is_file()
        saved_at = self.step
        with open(log_path, "a", newline="") as f, tqdm(total=end, initial=self.step, disable=not progress,
                                                         unit="step", desc="pix2pix", file=sys.stderr) as bar:
            writer = csv.DictWriter(f, fieldnames=fields)
            if new:
                writer.writeheader()
            while self.step < end:
                t0 = time.monotonic()
                row = self.train_step()
                self.seconds += time.monotonic() - t0
                bar.update(1)
                bar.set_postfix(l1=f"{row['loss_l1']:.3f}", d=f"{row['loss_d']:.3f}")
                if self.step % 10 == 0 or self.step == end:
                    writer.writerow({"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 3),
                                     "seconds": round(self.seconds, 1),
                                     **{k: round(v, 6) for k, v in row.items()}})
                    f.flush()
                if self.step % self.config.checkpoint_every == 0:
                    self.save()
                    saved_at = self.step
                if max_seconds is not None and time.monotonic() - start >= max_seconds:
                    break
        if saved_at != self.step:
            self.save()


def hardware(device: torch.device) -> str:
    import platform

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} thread(s)"


@torch.no_grad()
def held_out_metrics(G: torch.nn.Module, inputs: list[np.ndarray], targets: list[np.ndarray],
                     device: torch.device, seed: int = 0) -> dict[str, Any]:
    """On test patients: mean L1 (in [0, 1] units) from each normal film to a random COVID-19 film,
    before (the normal film itself) and after translation, and how much the translation changes
    the film. Unpaired films: a descriptive check that the output moved toward the COVID-19
    films' appearance, not a measure of realism (that is what the reader study is for)."""
    if not inputs or not targets:
        return {}
    import copy

    rng = np.random.default_rng(seed)
    G = inference_mode(copy.deepcopy(G))  # the trainer's model (and its BatchNorm counters) stay as trained
    before, after, change = [], [], []
    for img in inputs:
        y = targets[int(rng.integers(0, len(targets)))]
        out = (G(to_tensor([img]).to(device)).float().mean(dim=1)[0].cpu().numpy() + 1) / 2
        before.append(float(np.abs(img - y).mean()))
        after.append(float(np.abs(out - y).mean()))
        change.append(float(np.abs(out - img).mean()))
    return {"test_normal_films": len(inputs), "test_covid_films": len(targets),
            "l1_normal_to_covid": round(float(np.mean(before)), 4),
            "l1_synthetic_to_covid": round(float(np.mean(after)), 4),
            "l1_synthetic_to_input": round(float(np.mean(change)), 4)}


def export_synthesizer(trainer: Pix2PixTrainer, out: Path, extra: dict[str, Any] | None = None,
                       half: bool = False, name: str = SYNTH_ID) -> Manifest:
    cfg = trainer.config
    provenance = {
        "source": "trained by R2C Review's own code (r2c-review train-pix2pix)",
        "paper": "Liang et al., Enhancing Automated COVID-19 Chest X-ray Diagnosis by Image-to-Image GAN "
                 "Translation, IEEE BIBM 2020 (pix2pix, Isola et al. 2017)",
        "command": command_line(),
        "step": trainer.step,
        "epochs_done": round(trainer.step / trainer.steps_per_epoch, 2),
        "planned_epochs": cfg.epochs,
        "training_seconds": round(trainer.seconds, 1),
        "config": cfg.to_json(),
        "hardware": hardware(trainer.device),
        "licence": LICENCE,
        "intended_use": "synthetic films for blinded 'real or synthetic?' reader studies only",
        **(extra or {}),
    }
    manifest = Manifest(variant_id=SYNTH_ID, display_name="pix2pix synthetic COVID-19 (research only)",
                        kind="synthesizer", architecture=SYNTH_ARCH, input_size=cfg.size, output_mode="absolute",
                        provenance=provenance)
    return save_model(out / f"{name}.safetensors", trainer.G.state_dict(), manifest, half=half)


def build_data(data_root: Path, config: Pix2PixConfig) -> tuple[Pix2PixData, dict[str, Any], tuple[list, list]]:
    films = read_three_class(data_root)
    train, test = patient_split(films, config.test_fraction, config.seed)
    normals, covids = by_class(train, NORMAL), by_class(train, COVID19)
    summary = {"data": str(data_root), "split": "patient-grouped hash (core/train/cxr3.py)",
               "train_normal": len(normals), "train_covid": len(covids),
               "test_normal": len(by_class(test, NORMAL)), "test_covid": len(by_class(test, COVID19)),
               "sources": sorted({f.source for f in normals + covids})}
    log.info("pix2pix data: %s", summary)
    data = Pix2PixData([load_film(f.path, config.size) for f in normals],
                       [load_film(f.path, config.size) for f in covids])
    return data, summary, (by_class(test, NORMAL), by_class(test, COVID19))


def run_pix2pix_training(config: Pix2PixConfig, data_root: Path, run_dir: Path, device: torch.device,
                         max_steps: int | None = None, max_seconds: float | None = None,
                         progress: bool = True, evaluate: bool = True) -> Pix2PixTrainer:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data, summary, (test_normal, test_covid) = build_data(Path(data_root), config)
    (run_dir / "config.json").write_text(json.dumps(config.to_json(), indent=1))
    (run_dir / "split.json").write_text(json.dumps(summary, indent=1))
    trainer = Pix2PixTrainer(config, data, run_dir, device)
    trainer.resume()
    trainer.on_checkpoint = lambda t: export_synthesizer(t, run_dir / "model", {"data": summary})
    trainer.fit(max_steps=max_steps, max_seconds=max_seconds, progress=progress)
    if evaluate:
        metrics = held_out_metrics(trainer.G, [load_film(f.path, config.size) for f in test_normal],
                                   [load_film(f.path, config.size) for f in test_covid], device, config.seed)
        metrics["step"] = trainer.step
        (run_dir / "evaluation.json").write_text(json.dumps(metrics, indent=1))
        export_synthesizer(trainer, run_dir / "model", {"data": summary, "evaluation": metrics})
    return trainer


def publish_synthesizer(run_dir: Path, data_root: Path, out: Path, device: torch.device,
                        montage: bool = True) -> Manifest:
    """Install a run's synthesizer as ``OUT/pix2pix-covid.safetensors`` in float16, its manifest carrying the
    run's provenance (command, data, steps, training time, hardware) and the held-out figures recomputed
    here with the float16 weights; optionally ``OUT/pix2pix-montage.png`` (held-out normal films, their
    synthetic versions labelled SYNTHETIC, and real COVID-19 films)."""
    from core.synthesize import Synthesizer
    from core.weights.model_file import load_state

    run_dir, out = Path(run_dir), Path(out)
    source = run_dir / "model" / f"{SYNTH_ID}.safetensors"
    state, manifest = load_state(source)
    cfg = Pix2PixConfig(**{k: v for k, v in manifest.provenance["config"].items()
                           if k in {f.name for f in dataclasses.fields(Pix2PixConfig)}})
    films = read_three_class(data_root)
    _, test = patient_split(films, cfg.test_fraction, cfg.seed)
    normals = [load_film(f.path, cfg.size) for f in by_class(test, NORMAL)]
    covids = [load_film(f.path, cfg.size) for f in by_class(test, COVID19)]
    provenance = dict(manifest.provenance)
    provenance["published_from"] = {"run": str(run_dir), "sha256": manifest.sha256}
    tmp = out / f".{SYNTH_ID}.tmp.safetensors"
    half = save_model(tmp, state, dataclasses.replace(manifest, provenance=provenance), half=True)
    synth = Synthesizer.load(tmp, device)
    metrics = held_out_metrics(synth.model, normals, covids, device, cfg.seed)
    metrics["weights"] = "float16 (as shipped)"
    provenance["evaluation"] = metrics
    final = save_model(out / f"{SYNTH_ID}.safetensors", state,
                       dataclasses.replace(half, provenance=provenance, sha256=None), half=True)
    tmp.unlink(missing_ok=True)
    tmp.with_suffix(".json").unlink(missing_ok=True)
    if montage and normals and covids:
        write_montage(Synthesizer.load(out / f"{SYNTH_ID}.safetensors", device), normals[:4], covids[:4],
                      out / "pix2pix-montage.png")
    return final


def write_montage(synth: Any, normals: list[np.ndarray], covids: list[np.ndarray], path: Path) -> Path:
    """Rows: held-out normal films; their synthetic versions (burned-in label SYNTHETIC); real COVID-19 films."""
    size = synth.size

    def tile(img: np.ndarray, text: str) -> np.ndarray:
        t = (np.clip(cv2.resize(img, (size, size)), 0, 1) * 255).astype(np.uint8)
        t = cv2.cvtColor(t, cv2.COLOR_GRAY2BGR)
        cv2.putText(t, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 255) if "SYN" in text else (0, 200, 0),
                    2, cv2.LINE_AA)
        return t

    n = min(len(normals), len(covids))
    rows = [np.hstack([tile(normals[i], "normal (input)") for i in range(n)]),
            np.hstack([tile(synth.synthesize(normals[i]), "SYNTHETIC") for i in range(n)]),
            np.hstack([tile(covids[i], "real COVID-19") for i in range(n)])]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows))
    return path

"""``r2c-review train-classifier``: the augmentation experiment of Liang et al. (IEEE BIBM 2020, Table I).

A 3-class classifier (normal / COVID-19 / pneumonia) trained on the patient-grouped training split
of ``../shared/data`` (``core/train/cxr3.py``; the same split as ``train-pix2pix`` with the same
seed, so no test patient was seen by the synthesizer either), in two arms:

* ``none``: the real training films only;
* ``balanced``: plus synthetic COVID-19 films made by the pix2pix synthesizer from training normal
  films (cycled), as many as bring COVID-19 up to the largest class, as the paper balanced its set.

The backbone is torchvision's ResNet-50 with ``weights=None`` (trained from scratch; nothing is
downloaded) and a global-average-pooled head of 3 outputs, as in the paper; ``resnet18`` is offered
as a CPU deviation. Films are squashed to 224 x 224, gray repeated on three channels; training
augmentation: horizontal flip and rotations up to 5 degrees. Reported on the test patients: per-class
precision, recall and F1, accuracy, and accuracy per source folder (source and label are confounded
in this data: see ../shared/data/README.md), with the compute used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.train.cxr3 import CLASSES, COVID19, NORMAL, by_class, patient_split, read_three_class
from core.train.pix2pix import augment, hardware, load_film, to_tensor

log = logging.getLogger(__name__)

ARMS = ("none", "balanced")


@dataclass
class ClassifierConfig:
    backbone: str = "resnet50"
    epochs: int = 20
    size: int = 224
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    test_fraction: float = 0.15
    max_films: int | None = None  # cap on training films (smoke runs)
    rotate_deg: float = 5.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_classifier(backbone: str) -> torch.nn.Module:
    from torchvision import models

    if backbone not in ("resnet50", "resnet18"):
        raise ValueError(f"unknown backbone {backbone!r} (resnet50 or resnet18)")
    return getattr(models, backbone)(weights=None, num_classes=len(CLASSES))  # GAP head, 3 outputs


def synthetic_covid(normals: list[np.ndarray], count: int, weights: Path | None, device: torch.device,
                    size: int) -> list[np.ndarray]:
    """``count`` synthetic COVID-19 films from the training normals (cycled), at ``size``."""
    import cv2

    from core.synthesize import Synthesizer

    if count <= 0 or not normals:
        return []
    synth = Synthesizer.load(weights, device)
    out = []
    for i in range(count):
        img = synth.synthesize(normals[i % len(normals)])
        out.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) if img.shape != (size, size) else img)
    return out


def train_arm(config: ClassifierConfig, films: list[np.ndarray], labels: list[int], device: torch.device,
              progress: bool = True) -> tuple[torch.nn.Module, float]:
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    model = build_classifier(config.backbone).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = max(1, int(np.ceil(len(films) / config.batch_size)))
    total = config.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    y_all = np.asarray(labels)
    start = time.monotonic()
    model.train()
    with tqdm(total=total, disable=not progress, unit="step", desc=f"classifier ({config.backbone})",
              file=sys.stderr) as bar:
        for epoch in range(config.epochs):
            rng = np.random.default_rng([config.seed, epoch])
            order = rng.permutation(len(films))
            for b in range(steps_per_epoch):
                idx = order[b * config.batch_size:(b + 1) * config.batch_size]
                if len(idx) < 2:  # BatchNorm needs two films
                    continue
                x = to_tensor([augment(films[i], rng, config.rotate_deg) for i in idx]).to(device)
                y = torch.from_numpy(y_all[idx]).long().to(device)
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    return model, time.monotonic() - start


@torch.no_grad()
def predict(model: torch.nn.Module, films: list[np.ndarray], device: torch.device, batch: int = 32) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(films), batch):
        out.append(model(to_tensor(films[i:i + batch]).to(device)).argmax(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, int)


def metrics(y_true: np.ndarray, y_pred: np.ndarray, sources: list[str]) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=list(range(len(CLASSES))), zero_division=0)
    per_source = {}
    for s in sorted(set(sources)):
        mask = np.array([x == s for x in sources])
        per_source[s] = {"n": int(mask.sum()), "accuracy": float((y_true[mask] == y_pred[mask]).mean())}
    return {"accuracy": float((y_true == y_pred).mean()) if len(y_true) else None, "n": int(len(y_true)),
            "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "n": int(n[i])}
                          for i, c in enumerate(CLASSES)},
            "per_source": per_source}


def markdown_table(result: dict[str, Any]) -> str:
    lines = ["| Training set | Class | Precision | Recall | F1 | Test films |", "|---|---|---|---|---|---|"]
    for arm, res in result["arms"].items():
        m = res["test"]
        for c in CLASSES:
            pc = m["per_class"][c]
            lines.append(f"| {arm} | {c} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['f1']:.3f} | {pc['n']} |")
        lines.append(f"| {arm} | **accuracy** | | | **{m['accuracy']:.3f}** | {m['n']} |")
    lines += ["", "| Training set | " + " | ".join(f"accuracy, {s}" for s in result["sources"]) + " |",
              "|---|" + "---|" * len(result["sources"])]
    for arm, res in result["arms"].items():
        cells = [f"{res['test']['per_source'][s]['accuracy']:.3f} (n={res['test']['per_source'][s]['n']})"
                 for s in result["sources"]]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", f"Backbone {result['config']['backbone']} (weights=None), {result['config']['epochs']} epochs at "
                  f"{result['config']['size']} px; {result['hardware']}; "
                  + "; ".join(f"{arm}: {res['train_films']} training films ({res['synthetic_films']} synthetic), "
                              f"{res['train_seconds'] / 60:.1f} min" for arm, res in result["arms"].items())]
    return "\n".join(lines) + "\n"


def run_experiment(config: ClassifierConfig, data_root: Path, run_dir: Path, device: torch.device,
                   arms: list[str] | None = None, weights: Path | None = None, progress: bool = True) -> dict[str, Any]:
    arms = arms or list(ARMS)
    for arm in arms:
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r} ({', '.join(ARMS)})")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    films = read_three_class(data_root)
    train, test = patient_split(films, config.test_fraction, config.seed)
    if config.max_films is not None:
        rng = np.random.default_rng(config.seed)
        train = [train[i] for i in sorted(rng.permutation(len(train))[:config.max_films])]
    index = {c: i for i, c in enumerate(CLASSES)}
    train_imgs = [load_film(f.path, config.size) for f in train]
    train_y = [index[f.cls] for f in train]
    test_imgs = [load_film(f.path, config.size) for f in test]
    test_y = np.array([index[f.cls] for f in test])
    counts = {c: len(by_class(train, c)) for c in CLASSES}
    result: dict[str, Any] = {"config": config.to_json(), "data": str(data_root), "hardware": hardware(device),
                              "split": "patient-grouped hash (core/train/cxr3.py), same as train-pix2pix",
                              "train_counts": counts, "test_counts": {c: len(by_class(test, c)) for c in CLASSES},
                              "sources": sorted({f.source for f in test}), "arms": {}}
    for arm in arms:
        imgs, ys = list(train_imgs), list(train_y)
        n_syn = 0
        if arm == "balanced":
            normals = [img for img, f in zip(train_imgs, train, strict=True) if f.cls == NORMAL]
            n_syn = max(counts.values()) - counts[COVID19]
            syn = synthetic_covid(normals, n_syn, weights, device, config.size)
            imgs += syn
            ys += [index[COVID19]] * len(syn)
        model, seconds = train_arm(config, imgs, ys, device, progress)
        pred = predict(model, test_imgs, device)
        result["arms"][arm] = {"train_films": len(imgs), "synthetic_films": n_syn, "train_seconds": round(seconds, 1),
                               "test": metrics(test_y, pred, [f.source for f in test])}
        log.info("arm %s: accuracy %.3f", arm, result["arms"][arm]["test"]["accuracy"])
    result["markdown"] = markdown_table(result)
    (run_dir / "results.json").write_text(json.dumps(result, indent=1))
    (run_dir / "results.md").write_text(result["markdown"])
    return result

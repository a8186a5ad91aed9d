"""Training throughput per restoration variant: images per second of one paired-recipe step.

One step of ``core/train/paired.py`` (the recipe of the bundled weights) on synthetic films: 4
degraded + 1 clean 128-px patches, the second pass over 2 of them, a whole 256-px film for the
class head every second step (Task-GAN adds its discriminator). "Images/s" counts 256-px film
equivalents of generator input per second (a 128-px patch is a quarter), forward and backward.
Prints float32 and bfloat16-autocast figures (CPU: AVX512-BF16 where present; CUDA: mixed
precision), the median of ``--rounds`` rounds of ``--steps`` steps after two warm-up steps.

    .venv/bin/python benchmarks/bench_training.py [--device cuda] [--threads 2] [--variants r2c-q1,task-gan]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.train.paired import PairedConfig, PairedData, PairedTrainer, use_amp  # noqa: E402
from core.variants import VARIANTS  # noqa: E402


def films(n: int = 8, size: int = 286) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    return [np.clip(0.5 + 0.3 * np.sin(7 * xx + i) * np.cos(5 * yy) + 0.05 * rng.standard_normal((size, size)),
                    0, 1).astype(np.float32) for i in range(n)]


def film_equivalents(cfg: PairedConfig) -> float:
    """256-px film equivalents of generator input per step (averaged over film / no-film steps)."""
    patch = (cfg.patch / cfg.image_size) ** 2
    per_step = (cfg.patches + cfg.identity_patches + cfg.stability_patches) * patch
    return per_step + cfg.films / max(cfg.film_every, 1)


def measure(variant_id: str, device: torch.device, amp: bool, rounds: int, steps: int) -> float:
    v = VARIANTS[variant_id]
    cfg = PairedConfig(arch=v.architecture, q=v.q, steps=10_000, amp=amp, checkpoint_every=10**9)
    f = films()
    trainer = PairedTrainer(cfg, PairedData(f, f, [0, 1] * 4), Path("/nonexistent"), device)
    for _ in range(2):
        trainer.train_step()
    rates = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(steps * film_equivalents(cfg) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    modes = [("float32", False)] + ([("bfloat16", True)] if use_amp(device) else [])
    print(f"device {device} ({torch.get_num_threads()} threads); paired-recipe step; 256-px film equivalents/s")
    print(f"{'variant':16}" + "".join(f"{name:>12}" for name, _ in modes))
    results: dict[str, dict[str, float]] = {}
    for vid in args.variants.split(","):
        results[vid] = {name: measure(vid, device, amp, args.rounds, args.steps) for name, amp in modes}
        print(f"{vid:16}" + "".join(f"{results[vid][name]:12.2f}" for name, _ in modes), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "threads": torch.get_num_threads(),
                                         "images_per_second": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Generator speed per variant: inference ms per 256x256 pass (batch 1 and 8), GFLOP/s, and
training images/s.

Inference: batch 1 (and 8), 256x256, both outputs fetched, under inference_mode; a few warm-up
calls, then rounds of timed calls; the figure is the median of each round, and the median over
rounds. FLOPs are counted with torch's FlopCounterMode (2 FLOPs per multiply-accumulate).
Training: float32 images/s of one step of the paired recipe (forward and backward, the
optimiser step included), as ``benchmarks/bench_training.py`` measures it (256-px film
equivalents of generator input per second).

For the comparison with the authors' TensorFlow models, timed side by side in one run, use
``benchmarks/side_by_side.sh``; no TF figure from elsewhere is printed here.

    .venv/bin/python benchmarks/bench_generators.py [--threads 2] [--variants r2c-q1,r2c-cnn]
        [--no-train] [--device cuda] [--rounds 3] [--calls 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_training import measure as training_rate  # noqa: E402
from core.models import build_generator  # noqa: E402

VARIANTS = [("r2c-q1", "operational", 1), ("r2c-q3", "operational", 3), ("r2c-q5", "operational", 5),
            ("r2c-cnn", "convolutional", None), ("r2c-cnn-light", "convolutional-light", None),
            ("task-gan", "task-unet", None)]


def flops_per_image(model: torch.nn.Module) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 256, 256))
    return float(counter.get_total_flops())


def time_model(model: torch.nn.Module, batch: int, device: torch.device, rounds: int, calls: int,
               half: bool) -> float:
    x = torch.rand(batch, 3, 256, 256, device=device) * 2 - 1
    dtype = torch.float16 if half else torch.float32

    def once() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=half):
            image, probs = model(x)
            image.cpu(), probs.cpu()  # fetch both outputs, as the TF timing did

    for _ in range(3):
        once()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
        medians.append(statistics.median(times))
    return statistics.median(medians) * 1000.0 / batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--half", action="store_true", help="fp16 autocast (CUDA)")
    parser.add_argument("--variants", default=",".join(v for v, _, _ in VARIANTS))
    parser.add_argument("--no-train", action="store_true", help="inference figures only")
    parser.add_argument("--train-steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print(f"{'variant':<14} {'GFLOP/img':>9} {'b1 ms':>8} {'b8 ms/img':>10} {'GFLOP/s b1':>11} "
          f"{'GFLOP/s b8':>11} {'train img/s':>11}")
    results = {}
    chosen = args.variants.split(",")
    for vid, arch, q in VARIANTS:
        if vid not in chosen:
            continue
        model = build_generator(arch, q).eval()
        gflop = flops_per_image(model) / 1e9
        model = model.to(device)
        b1 = time_model(model, 1, device, args.rounds, args.calls, args.half)
        b8 = time_model(model, 8, device, max(1, args.rounds - 1), max(3, args.calls // 3), args.half)
        results[vid] = {"gflop_per_image": gflop, "ms_batch1": b1, "ms_per_image_batch8": b8,
                        "gflops_batch1": gflop / b1 * 1000, "gflops_batch8": gflop / b8 * 1000}
        del model
        train = None if args.no_train else training_rate(vid, device, False, args.rounds, args.train_steps)
        results[vid]["train_images_per_second"] = train
        cell = f"{'-':>11}" if train is None else f"{train:11.2f}"
        print(f"{vid:<14} {gflop:9.2f} {b1:8.1f} {b8:10.1f} {gflop / b1 * 1000:11.1f} {gflop / b8 * 1000:11.1f} "
              f"{cell}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "threads": torch.get_num_threads(),
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

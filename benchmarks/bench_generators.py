"""Generator inference speed per variant: ms per 256x256 pass (batch 1 and 8) and GFLOP/s.

Protocol mirrors the authors' TF timing in ../shared/reference/r2c-gan/timing (2 vCPU,
batch 1, 256x256, both outputs fetched): a few warm-up calls, then rounds of timed calls;
the figure is the median of each round, and the median over rounds. FLOPs are counted
with torch's FlopCounterMode (2 FLOPs per multiply-accumulate), as for any conv net.

    .venv/bin/python benchmarks/bench_generators.py [--device cuda] [--rounds 3] [--calls 10]
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
from core.models import build_generator  # noqa: E402

VARIANTS = [("r2c-q1", "operational", 1), ("r2c-q3", "operational", 3), ("r2c-q5", "operational", 5),
            ("r2c-cnn", "convolutional", None), ("r2c-cnn-light", "convolutional-light", None),
            ("task-gan", "task-unet", None)]
TF_MS = {"r2c-q1": 85.6, "r2c-q3": 201.9, "r2c-q5": 451.0, "r2c-cnn": 687.9, "r2c-cnn-light": 79.3}


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
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print(f"{'variant':<14} {'GFLOP/img':>9} {'b1 ms':>8} {'b8 ms/img':>10} {'GFLOP/s b1':>11} "
          f"{'GFLOP/s b8':>11} {'TF ms':>7} {'speed-up b1':>11}")
    results = {}
    for vid, arch, q in VARIANTS:
        model = build_generator(arch, q).eval()
        gflop = flops_per_image(model) / 1e9
        model = model.to(device)
        b1 = time_model(model, 1, device, args.rounds, args.calls, args.half)
        b8 = time_model(model, 8, device, max(1, args.rounds - 1), max(3, args.calls // 3), args.half)
        results[vid] = {"gflop_per_image": gflop, "ms_batch1": b1, "ms_per_image_batch8": b8,
                        "gflops_batch1": gflop / b1 * 1000, "gflops_batch8": gflop / b8 * 1000,
                        "tf_ms_batch1": TF_MS.get(vid)}
        tf = f"{TF_MS[vid]:7.1f} {TF_MS[vid] / b1:10.2f}x" if vid in TF_MS else f"{'-':>7} {'-':>11}"
        print(f"{vid:<14} {gflop:9.2f} {b1:8.1f} {b8:10.1f} {gflop / b1 * 1000:11.1f} {gflop / b8 * 1000:11.1f} "
              f"{tf}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": str(device), "threads": torch.get_num_threads(),
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

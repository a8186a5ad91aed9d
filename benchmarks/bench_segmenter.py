"""Lung segmenter speed: ms per film with and without left-right mirror averaging.

The shipped segmenter averages each film with its mirror image (``core/segment.py``, measured to
help on sources never trained on); this prints what that costs. The film is a synthetic 2048x2500
chest-like image, so the resize to and from the model size is included, as in the app. Each
figure is the median over timed calls after warm-up calls.

    .venv/bin/python benchmarks/bench_segmenter.py [--threads 2] [--device cuda] [--calls 10]
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
from core.segment import LungSegmenter  # noqa: E402
from core.variants import SEGMENTER_ID, weights_path  # noqa: E402


def time_segment(segmenter: LungSegmenter, film: np.ndarray, calls: int) -> float:
    for _ in range(2):
        segmenter.segment(film)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        segmenter.segment(film)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = weights_path(SEGMENTER_ID)
    if path is None:
        print("no segmenter installed in resources/models", file=sys.stderr)
        return 2
    yy, xx = np.mgrid[:2500, :2048].astype(np.float32)
    film = np.clip(0.55 + 0.3 * np.sin(xx / 300) * np.cos(yy / 400), 0, 1).astype(np.float32)
    results = {}
    for flip in (False, True):
        seg = LungSegmenter(path, torch.device(args.device), flip_average=flip)
        results["mirror-averaged" if flip else "single"] = round(time_segment(seg, film, args.calls), 1)
    print(json.dumps({"device": args.device, "threads": torch.get_num_threads(),
                      "input_size": seg.input_size, "ms_per_film": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Native-resolution restoration: guided upsampling vs plain upsampling of the 256-px result.

Protocol: each clean film is degraded *at its own resolution* with the project's independent
blend (``core.train.evaluate.independent_blend``: blur, under-exposure, noise, JPEG; seeded
per film), restored by a bundled generator at its default passes (256-px input, the authors'
preprocessing), and carried back to the film's size two ways:

* plain: the 256-px result resized (bicubic) to the film's height and width;
* guided: ``core.guided.native_restoration`` (fast guided filter, coefficients upsampled).

The same is done on the clean films themselves (a restoration must keep a good film).

PSNR and SSIM are measured against the clean film at full resolution. Films: the real DICOM
chest films in ../shared/data/dicom (1024-2128 px) and the first N of cxr_labeled (512 px),
reported separately. Timing: one 2048 x 2048 film, median of repeated calls, for the
generator passes, each upsampling, and the whole restore at native size.

    taskset -c 1 .venv/bin/python benchmarks/bench_native_restore.py [--variant r2c-q3] [--labeled 12]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.guided import native_restoration, plain_upsample  # noqa: E402
from core.imaging import load_xray  # noqa: E402
from core.preprocess import to_square  # noqa: E402
from core.quality import psnr, ssim  # noqa: E402
from core.restore import Restorer  # noqa: E402
from core.train.evaluate import independent_blend  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DICOM_FILMS = ("nhsx_nih_chestxray_DX_8bit.dcm", "pydicomdata_RG1_J2KI.dcm", "pylibjpegdata_966_fixed.dcm",
               "torchxrayvision_siim_CR_jpeg_baseline.dcm")
SEED = 20261202


def films(labeled: int) -> dict[str, list[tuple[str, np.ndarray]]]:
    sets = {"dicom": [(name, load_xray(SHARED / "dicom" / name).display) for name in DICOM_FILMS]}
    pngs = sorted((SHARED / "cxr_labeled").glob("*.png"))[:labeled]
    sets["cxr_labeled"] = [(p.name, load_xray(p).display) for p in pngs]
    return sets


def evaluate(restorer: Restorer, variant: str, items: list[tuple[str, np.ndarray]], degrade: bool = True) -> dict:
    rows = []
    for k, (name, clean) in enumerate(items):
        degraded = independent_blend(clean, np.random.default_rng([SEED, k])) if degrade else clean
        restored = restorer.restore(degraded, variant).final
        plain = plain_upsample(restored, degraded.shape)
        guided = native_restoration(degraded, restored)
        rows.append({"film": name, "size": [int(clean.shape[1]), int(clean.shape[0])],
                     "degraded": [psnr(clean, degraded), ssim(clean, degraded)] if degrade else [float("inf"), 1.0],
                     "plain": [psnr(clean, plain), ssim(clean, plain)],
                     "guided": [psnr(clean, guided), ssim(clean, guided)]})
    mean = {m: [float(np.mean([r[m][0] for r in rows])), float(np.mean([r[m][1] for r in rows]))]
            for m in ("degraded", "plain", "guided")}
    wins = {"psnr": sum(r["guided"][0] > r["plain"][0] for r in rows),
            "ssim": sum(r["guided"][1] > r["plain"][1] for r in rows), "of": len(rows)}
    return {"films": rows, "mean": mean, "guided_wins": wins}


def median_ms(fn, calls: int) -> float:
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def timing(restorer: Restorer, variant: str, calls: int) -> dict:
    film = load_xray(SHARED / "dicom" / "pylibjpegdata_966_fixed.dcm").display
    film = np.ascontiguousarray(cv2.resize(film, (2048, 2048), interpolation=cv2.INTER_AREA))
    degraded = independent_blend(film, np.random.default_rng([SEED, 99]))
    restored = restorer.restore(degraded, variant).final
    return {
        "film": "pylibjpegdata_966_fixed resized to 2048 x 2048",
        "model_input_ms": median_ms(lambda: to_square(degraded), calls),
        "generator_ms": median_ms(lambda: restorer.restore(degraded, variant), max(3, calls // 3)),
        "plain_upsample_ms": median_ms(lambda: plain_upsample(restored, degraded.shape), calls),
        "guided_upsample_ms": median_ms(lambda: native_restoration(degraded, restored), calls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="r2c-q3")
    parser.add_argument("--labeled", type=int, default=12, help="cxr_labeled films to include (512 px)")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--timing-only", action="store_true", help="skip the quality figures")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"reference data {SHARED} is not available", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    restorer = Restorer("cpu")
    out: dict = {"variant": args.variant, "threads": 1, "sets": {}}
    sets = {} if args.timing_only else films(args.labeled)
    for (set_name, items), degrade in itertools.product(sets.items(), (True, False)):
        res = evaluate(restorer, args.variant, items, degrade)
        label = f"{set_name}, {'degraded at full resolution' if degrade else 'clean (restoration must keep it)'}"
        out["sets"][f"{set_name}/{'degraded' if degrade else 'clean'}"] = res
        print(f"\n{label} ({len(items)} films, {args.variant}, PSNR dB / SSIM vs the clean film)")
        print(f"{'film':<44} {'input':>15} {'plain':>15} {'guided':>15}")
        for r in res["films"]:
            cells = " ".join(f"{r[m][0]:7.2f}/{r[m][1]:.4f}" for m in ("degraded", "plain", "guided"))
            print(f"{r['film'][:44]:<44} {cells}")
        m = res["mean"]
        print(f"{'mean':<44} " + " ".join(f"{m[k][0]:7.2f}/{m[k][1]:.4f}" for k in ("degraded", "plain", "guided")))
        w = res["guided_wins"]
        print(f"guided better than plain: PSNR {w['psnr']}/{w['of']} films, SSIM {w['ssim']}/{w['of']}")
    out["timing_2048"] = t = timing(restorer, args.variant, args.calls)
    print(f"\n2048 x 2048 film, one core: model input {t['model_input_ms']:.1f} ms, generator passes "
          f"{t['generator_ms']:.1f} ms, plain upsampling {t['plain_upsample_ms']:.1f} ms, guided upsampling "
          f"{t['guided_upsample_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``r2c-review evaluate``: restoration, classification and segmentation figures on held-out data.

* Restoration where a clean reference exists: clean held-out images are degraded with a
  fixed seed (``core.degrade``), restored, and compared with the clean image (PSNR/SSIM
  per pass count, and the gain over the degraded input).
* A high-quality input must stay high quality: PSNR/SSIM of the restored image vs. its input.
* Classification from the generator's class head (pass 1, threshold 0.5): accuracy,
  sensitivity, specificity, precision, F1, F2, overall and per data source. In the public
  data, source and label are confounded (COVID-19 images come mostly from paper figures and
  portable films, controls from screening archives), so high figures may reflect the
  source rather than the disease.
* Segmentation: Dice and IoU at each image's own resolution, per dataset.

All comparisons happen at the model's 256x256 input size, where restorations live.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, fbeta_score, precision_score, recall_score

from core.degrade import degrade
from core.errors import TrainingError
from core.quality import checkerboard_ratio, psnr, ssim
from core.restore import Restorer, to_model_input
from core.train.data import (
    UNLABELED,
    LabeledImage,
    holdout_by_patient,
    read_gray,
    read_labeled_folder,
    read_mask,
    read_mask_folder,
    split_masks,
)
from core.train.domains import DomainPlan, build_domain_plan
from core.variants import VARIANTS, weights_path

log = logging.getLogger(__name__)
EVAL_SEED_TAG = 0xE7A1
CONFOUND_NOTE = ("source and label are confounded in this data (COVID-19 images mostly come from paper figures and "
                 "portable AP films, controls mostly from screening archives): the classifier may recognise the "
                 "source rather than the disease; read the per-source figures")


def classification_metrics(y_true: list[int], y_pred: list[int]) -> dict[str, float | int]:
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    zero = {"zero_division": 0.0}
    return {
        "n": len(y_true), "covid": int(sum(y_true)), "control": int(len(y_true) - sum(y_true)),
        "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "sensitivity": float(recall_score(y_true, y_pred, **zero)),
        "specificity": float(tn / (tn + fp)) if tn + fp else float("nan"),
        "precision": float(precision_score(y_true, y_pred, **zero)),
        "f1": float(f1_score(y_true, y_pred, **zero)),
        "f2": float(fbeta_score(y_true, y_pred, beta=2, **zero)),
    }


def _bar(items: list, desc: str):  # noqa: ANN202 - a tqdm iterator
    from tqdm import tqdm

    return tqdm(items, desc=f"evaluate {desc}", file=sys.stderr, disable=len(items) < 2, dynamic_ncols=True)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _model_inputs(paths: list[Path]) -> list[np.ndarray]:
    """Display images at the model's size in [0, 1] (what a restoration is compared with)."""
    return [(to_model_input(read_gray(p))[0] + 1.0) / 2.0 for p in paths]


def independent_blend(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A fixed-recipe degradation, independent of ``core.degrade`` (which training uses): blur,
    under-exposure, noise and JPEG, applied at the film's own resolution (so the restorer's
    resize to 256 px is part of the test, as it is for a real film)."""
    import cv2

    img = np.clip(np.asarray(image, np.float32), 0, 1)
    scale = max(img.shape) / 512.0  # strengths defined for a 512-px film
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.8, 1.6)) * scale)
    img = np.power(img, float(rng.uniform(1.2, 1.5))) * float(rng.uniform(0.85, 0.95))
    img = img + rng.normal(0.0, float(rng.uniform(0.02, 0.04)), img.shape).astype(np.float32)
    ok, buf = cv2.imencode(".jpg", (np.clip(img, 0, 1) * 255).round().astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 60))])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def restoration_figures(restorer: Restorer, variant: str | None, weights: str | None, clean: list[np.ndarray],
                        iterations: list[int], seed: int, degraded: list[np.ndarray] | None = None
                        ) -> dict[str, Any]:
    """Gain on degraded films, clean films kept, and checkerboard, per pass count.

    ``clean`` are references at the model size; ``degraded`` (any size) defaults to the training
    degradation of ``clean`` with a fixed seed.
    """
    n_iter = max(iterations)
    if degraded is None:
        degraded = [degrade(img, np.random.default_rng([seed, EVAL_SEED_TAG, i])).image for i, img in enumerate(clean)]
    deg_small = [(to_model_input(d)[0] + 1.0) / 2.0 for d in degraded]
    restored = restorer.restore_many(degraded, variant, n_iter, weights)
    per_iter: dict[str, dict[str, float]] = {
        "0": {"psnr": _mean([psnr(c, d) for c, d in zip(clean, deg_small, strict=True)]),
              "ssim": _mean([ssim(c, d) for c, d in zip(clean, deg_small, strict=True)])}}
    for k in iterations:
        outs = [r.images[k - 1] for r in restored]
        per_iter[str(k)] = {"psnr": _mean([psnr(c, o) for c, o in zip(clean, outs, strict=True)]),
                            "ssim": _mean([ssim(c, o) for c, o in zip(clean, outs, strict=True)]),
                            "checkerboard": _mean([checkerboard_ratio(o, c) for c, o in zip(clean, outs, strict=True)])}
    kept = restorer.restore_many(clean, variant, n_iter, weights)
    high: dict[str, dict[str, float]] = {}
    for k in iterations:
        outs = [r.images[k - 1] for r in kept]
        high[str(k)] = {"psnr": _mean([psnr(c, o) for c, o in zip(clean, outs, strict=True)]),
                        "ssim": _mean([ssim(c, o) for c, o in zip(clean, outs, strict=True)]),
                        "checkerboard": _mean([checkerboard_ratio(o, c) for c, o in zip(clean, outs, strict=True)]),
                        "checkerboard_max": float(max(checkerboard_ratio(o, c)
                                                      for c, o in zip(clean, outs, strict=True)))}
    return {"degraded": {"n": len(clean), "per_iteration": per_iter,
                         "psnr_gain_db": {str(k): per_iter[str(k)]["psnr"] - per_iter["0"]["psnr"]
                                          for k in iterations}},
            "high_quality": {"n": len(clean), "per_iteration": high}}


def classification_figures(restorer: Restorer, variant: str | None, weights: str | None,
                           items: list[LabeledImage], images: list[np.ndarray]) -> dict[str, Any]:
    """Class-head figures (first pass, threshold 0.5), overall and per source; unlabelled films skipped."""
    keep = [i for i, it in enumerate(items) if it.label != UNLABELED]
    items, images = [items[i] for i in keep], [images[i] for i in keep]
    if not items:
        return {"overall": None, "by_source": {}, "note": "no COVID-19/control labels in this set"}
    preds = restorer.restore_many(images, variant, 1, weights)
    y_true = [it.label for it in items]
    y_pred = [int(r.probs[0][1] >= 0.5) for r in preds]
    by_source: dict[str, dict] = {}
    for source in sorted({it.source for it in items}):
        idx = [i for i, it in enumerate(items) if it.source == source]
        by_source[source] = classification_metrics([y_true[i] for i in idx], [y_pred[i] for i in idx])
    return {"overall": classification_metrics(y_true, y_pred), "by_source": by_source, "note": CONFOUND_NOTE}


def evaluate_generator(restorer: Restorer, variant: str | None, weights: str | None, clean: list[np.ndarray],
                       all_items: list[LabeledImage], all_images: list[np.ndarray], iterations: list[int],
                       seed: int, clean_full: list[np.ndarray] | None = None) -> dict[str, Any]:
    loaded = restorer.generator(variant, weights)
    out: dict[str, Any] = {"model_file": str(loaded.path), "model_sha256": loaded.manifest.sha256,
                           "epochs_done": loaded.manifest.provenance.get("epochs_done"),
                           "default_iterations": loaded.manifest.default_iterations,
                           "output_mode": loaded.manifest.output_mode}
    out |= restoration_figures(restorer, variant, weights, clean, iterations, seed)
    if clean_full is not None:
        blended = [independent_blend(img, np.random.default_rng([seed, EVAL_SEED_TAG, 2, i]))
                   for i, img in enumerate(clean_full)]
        out["independent_blend"] = restoration_figures(restorer, variant, weights, clean, iterations, seed,
                                                       degraded=blended)["degraded"]
    out["classification"] = classification_figures(restorer, variant, weights, all_items, all_images)
    return out


def evaluate_segmenter(masks_dir: Path, seg_weights: Path | None, device: torch.device, seed: int,
                       all_images: bool) -> dict[str, Any]:
    """Per source: Dice, IoU, precision, recall, area ratio and, against heart-including outlines,
    the Dice where both conventions agree (``core.train.conventions``). Sources the model was
    trained on are measured on their held-out split; the others on every film."""
    from core.segment import LungSegmenter
    from core.train.conventions import HEART_INCLUDING, mask_figures, mean_figures

    segmenter = LungSegmenter(seg_weights, device)
    config = segmenter.manifest.provenance.get("config", {})
    excluded = set(config.get("exclude", ["v7covid"])) - set(config.get("heart_including", []))
    pairs = read_mask_folder(masks_dir)
    if not all_images:
        trained = [p for p in pairs if p.dataset not in excluded]
        _, held = split_masks(trained, config.get("test_fraction", 0.2), seed)
        pairs = held + [p for p in pairs if p.dataset in excluded]
    results: dict[str, list[dict[str, float]]] = {}
    for pair in _bar(pairs, "segmentation"):
        image = read_gray(pair.image)
        results.setdefault(pair.dataset, []).append(
            mask_figures(segmenter.segment(image).mask, read_mask(pair.mask, image.shape),
                         pair.dataset in HEART_INCLUDING))

    def summary(rows: list[dict[str, float]]) -> dict[str, Any]:
        return {"n": len(rows), **mean_figures(rows), "dice_min": float(min(r["dice"] for r in rows))}

    by_dataset = {name: summary(v) | {"convention": "heart-including" if name in HEART_INCLUDING else "standard",
                                      "trained_on": name not in excluded}
                  for name, v in sorted(results.items())}
    standard = [r for name, v in results.items() if name not in HEART_INCLUDING for r in v]
    return {"model_sha256": segmenter.manifest.sha256,
            "epochs_done": segmenter.manifest.provenance.get("epochs_done"),
            "by_dataset": by_dataset,
            "standard_convention": summary(standard) if standard else {"n": 0},
            "note": ("films held out of training where the source was trained on, all films otherwise. The standard "
                     "convention (lung fields, heart excluded) is the Shenzhen outlines'. The GeneralBlockchain "
                     "(gbcovid) and V7 (v7covid) outlines take in the heart and retrocardiac region, so their plain "
                     "Dice is capped by construction; their agreed-region Dice counts only the pixels both "
                     "conventions agree on (outside the outline, and the lateral half of each lung)")}


EXTERNAL_FRACTION = 0.2  # the held-out patients of an extra folder (core/train/paired_run.py holds out the same)


def external_films(folder: Path, seed: int, limit: int) -> list[LabeledImage]:
    """Held-out patients of another folder (never trained on), the first ``limit`` by name."""
    _, held = holdout_by_patient(read_labeled_folder(folder, other_labels=True), EXTERNAL_FRACTION, seed)
    return sorted(held, key=lambda it: it.name)[:limit]


def evaluate_all(labeled: Path | None, masks: Path | None, variants: list[str], weights: list[str],
                 seg_weights: Path | None, plan_path: Path | None, seed: int, test_fraction: float,
                 iterations: list[int], all_images: bool, device: torch.device,
                 external: list[Path] | None = None, external_limit: int = 40) -> dict[str, Any]:
    if labeled is None and masks is None:
        raise TrainingError(None, "give --labeled and/or --masks")
    report: dict[str, Any] = {"generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "device": str(device), "iterations": iterations}
    if labeled is not None:
        items = read_labeled_folder(labeled)
        if all_images:
            test_items, clean_items = items, items
            report["split"] = "all images of the folder"
        else:
            plan = DomainPlan.load(plan_path) if plan_path else build_domain_plan(items, seed, test_fraction)
            by_name = {it.name: it for it in items}
            test_items = [by_name[n] for n in plan.test]
            clean_items = [by_name[n] for n in plan.test_clean]
            report["split"] = f"held-out patients (seed {plan.seed}): {len(test_items)} images, " \
                              f"{len(clean_items)} clean"
        clean_full = [read_gray(it.path) for it in clean_items]
        clean = [(to_model_input(img)[0] + 1.0) / 2.0 for img in clean_full]
        all_imgs = [read_gray(it.path) for it in test_items]
        restorer = Restorer(device)
        targets: list[tuple[str | None, str | None]] = [(v, None) for v in variants] + [(None, w) for w in weights]
        if not targets:
            targets = [(v, None) for v in VARIANTS if weights_path(v)]
        if not targets:
            raise TrainingError(None, "no generator weights installed; give --variant or --weights")
        ext_sets = {}
        for folder in external or []:
            ext_items = external_films(folder, seed, external_limit)
            ext_full = [read_gray(it.path) for it in ext_items]
            ext_sets[folder.name] = (ext_items, ext_full, [(to_model_input(i)[0] + 1.0) / 2.0 for i in ext_full])
        report["restoration"] = {}
        report["external"] = {name: {"n": len(v[0]), "restoration": {}} for name, v in ext_sets.items()}
        for variant, w in _bar(targets, "restoration"):
            key = variant or Path(w).stem  # type: ignore[arg-type]
            log.info("evaluating %s", key)
            report["restoration"][key] = evaluate_generator(restorer, variant, w, clean, test_items, all_imgs,
                                                            iterations, seed, clean_full=clean_full)
            for name, (ext_items, ext_full, ext_small) in ext_sets.items():
                fig = restoration_figures(restorer, variant, w, ext_small, iterations, seed)
                fig["classification"] = classification_figures(restorer, variant, w, ext_items, ext_full)
                report["external"][name]["restoration"][key] = fig
    if masks is not None:
        report["segmentation"] = evaluate_segmenter(masks, seg_weights, device, seed, all_images)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = []
    for key, r in report.get("restoration", {}).items():
        d, h, c = r["degraded"], r["high_quality"], r["classification"]["overall"]
        its = report["iterations"]
        gains = ", ".join(f"x{k}: {d['psnr_gain_db'][str(k)]:+.2f} dB" for k in its)
        hq = ", ".join(f"x{k}: {h['per_iteration'][str(k)]['psnr']:.2f} dB" for k in its)
        cb = ", ".join(f"x{k}: {h['per_iteration'][str(k)]['checkerboard']:.3f}" for k in its)
        lines.append(f"{key} (default {r.get('default_iterations', 1)} pass(es)): degraded PSNR "
                     f"{d['per_iteration']['0']['psnr']:.2f} dB; gain {gains}")
        if "independent_blend" in r:
            b = r["independent_blend"]
            lines.append(f"{'':{len(key)}}  independent blend: input {b['per_iteration']['0']['psnr']:.2f} dB; gain "
                         + ", ".join(f"x{k}: {b['psnr_gain_db'][str(k)]:+.2f} dB" for k in its))
        lines.append(f"{'':{len(key)}}  high-quality kept: {hq}; checkerboard {cb}")
        lines.append(f"{'':{len(key)}}  classification: acc {c['accuracy']:.3f} sens {c['sensitivity']:.3f} "
                     f"spec {c['specificity']:.3f} prec {c['precision']:.3f} F1 {c['f1']:.3f} F2 {c['f2']:.3f}")
    for name, ext in report.get("external", {}).items():
        for key, r in ext["restoration"].items():
            k = str(report.get("restoration", {}).get(key, {}).get("default_iterations", 1))
            lines.append(f"{name} / {key} x{k}: gain {r['degraded']['psnr_gain_db'][k]:+.2f} dB, clean kept "
                         f"{r['high_quality']['per_iteration'][k]['psnr']:.2f} dB")
    if "segmentation" in report:
        for name, v in report["segmentation"]["by_dataset"].items():
            lines.append(f"segmentation {name}: n={v['n']} Dice {v['dice']:.4f} IoU {v['iou']:.4f}")
        for f in report["segmentation"].get("leave_one_source_out", {}).get("folds", []):
            lines.append(f"segmentation, {f['left_out']} left out of training: n={f['n']} Dice {f['dice']:.4f}")
    return "\n".join(lines)

"""``r2c-review publish``: trained runs -> the weights shipped in ``resources/models``.

For every finished (or stopped) run it copies the exported model file, in half precision
when the restored images and probabilities stay within tolerance of float32 (halving the
repository cost of the large models), evaluates what was installed with the same code as
``r2c-review evaluate``, adds the figures to each sidecar manifest (the weights file and
its sha256 do not change), and writes ``EVALUATION.md``, ``evaluation.json`` and
``MODEL_CARD.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import TrainingError
from core.models.segmenter import build_segmenter
from core.preprocess import to_square
from core.restore import Restorer, generator_from_state, to_display, to_model_input
from core.train.data import read_gray, read_labeled_folder, read_mask_folder
from core.train.domains import DomainPlan
from core.train.evaluate import (
    evaluate_all,
    evaluate_segmenter,
    external_films,
    independent_blend,
    restoration_figures,
)
from core.train.heads import HEADS_RUN, graft_head
from core.train.report import evaluation_markdown, model_card
from core.train.seg import loso_summary
from core.train.tone import TONE_FILE, TONE_RUN, graft_tone_curve
from core.variants import SEGMENTER_ID, VARIANTS
from core.weights.model_file import load_state, read_manifest, save_model, sidecar_path

log = logging.getLogger(__name__)

HALF_IMAGE_TOL = 2.0 / 255.0  # max abs difference of display images after all passes
HALF_PROB_TOL = 2e-3
HALF_MASK_DICE = 0.995  # segmenter: masks from fp16 weights vs fp32 weights


def _half_ok_generator(state: dict[str, torch.Tensor], arch: str, q: int | None, iterations: int,
                       images: list[np.ndarray], output_mode: str = "absolute") -> tuple[bool, dict[str, float]]:
    full = generator_from_state(arch, q, output_mode, state, "float32 weights").eval()
    half = generator_from_state(arch, q, output_mode, {k: v.half().float() if v.is_floating_point() else v
                                                       for k, v in state.items()}, "float16 weights").eval()
    x = torch.from_numpy(np.stack([to_model_input(im) for im in images]))
    y1, y2 = x, x
    with torch.no_grad():
        for _ in range(iterations):
            y1, p1 = full(y1)
            y2, p2 = half(y2)
    img_err = max(float(np.abs(to_display(a) - to_display(b)).max()) for a, b in zip(y1, y2, strict=True))
    prob_err = float((p1 - p2).abs().max())
    return img_err <= HALF_IMAGE_TOL and prob_err <= HALF_PROB_TOL, {"image": img_err, "probability": prob_err}


def _half_ok_segmenter(state: dict[str, torch.Tensor], images: list[np.ndarray],
                       size: int) -> tuple[bool, dict[str, float]]:
    from core.segment import to_segmenter_input

    full, half = build_segmenter().eval(), build_segmenter().eval()
    full.load_state_dict(state)
    half.load_state_dict({k: (v.half().float() if v.is_floating_point() else v) for k, v in state.items()})
    x = torch.from_numpy(np.stack([to_segmenter_input(im, size) for im in images]))
    with torch.no_grad():
        m1, m2 = full(x) > 0, half(x) > 0
    dice = float(2 * (m1 & m2).sum() / max(int(m1.sum() + m2.sum()), 1))
    return dice >= HALF_MASK_DICE, {"mask_dice_fp16_vs_fp32": dice}


CLEAN_KEEP_DB = 32.0  # a pass count may not take clean films below this PSNR
CHECKERBOARD_MAX = 1.1  # nor add periodic (2/4-px) energy beyond this ratio
PASS_CHOICES = (1, 2, 3)


def pick_passes(gain: dict[str, float], clean_psnr: dict[str, float], checkerboard: dict[str, float]) -> int:
    """The pass count with the best gain among those that keep clean films >= CLEAN_KEEP_DB and
    add no checkerboard; 1 (the least damage) when none qualifies."""
    ok = [k for k in PASS_CHOICES
          if clean_psnr[str(k)] >= CLEAN_KEEP_DB and checkerboard[str(k)] <= CHECKERBOARD_MAX]
    return max(ok, key=lambda k: gain[str(k)]) if ok else 1


def choose_passes(restorer: Restorer, model_file: Path, validation: list[np.ndarray], seed: int
                  ) -> tuple[int, dict[str, Any]]:
    """``pick_passes`` on validation films (never the test split); returns the count and the figures."""
    figs = restoration_figures(restorer, None, str(model_file), validation, list(PASS_CHOICES), seed)
    gain = figs["degraded"]["psnr_gain_db"]
    high = figs["high_quality"]["per_iteration"]
    clean = {k: v["psnr"] for k, v in high.items()}
    board = {k: v["checkerboard"] for k, v in high.items()}
    best = pick_passes(gain, clean, board)
    return best, {"chosen": best, "rule": f"best gain with clean films >= {CLEAN_KEEP_DB} dB and checkerboard "
                                          f"<= {CHECKERBOARD_MAX}; 1 if none", "n_validation": len(validation),
                  "gain_db": gain, "clean_psnr": clean, "checkerboard": board}


def training_time(run: Path) -> dict[str, float]:
    """Steps and CPU time of a run, from its ``metrics.csv`` (one row per optimisation step)."""
    import csv

    path = run / "metrics.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f) if row.get("seconds")]
    return {"logged_steps": len(seconds), "seconds": round(sum(seconds), 1),
            "wall_hours": round(sum(seconds) / 3600, 3)}


def validation_films(validation: Path, seed: int, limit: int = 40) -> list[np.ndarray]:
    """Held-out patients of the validation folder at model size (never the test split)."""
    return [(to_model_input(read_gray(it.path))[0] + 1.0) / 2.0 for it in external_films(validation, seed, limit)]


def publish(runs: Path, out: Path, labeled: Path, masks: Path | None, device: torch.device,
            half_over_mb: float = 8.0, seg_run: Path | None = None, validation: Path | None = None,
            external: list[Path] | None = None, seg_loso: list[Path] | None = None) -> dict[str, Any]:
    """Install every trained generator run under ``runs`` and the segmenter of ``seg_run``
    (default ``runs/lung-seg``), then evaluate what was installed (with the installed
    segmenter when no new one is given). With ``validation`` (a labelled folder whose held-out
    patients no model trained on), each variant's default pass count is chosen there. ``seg_loso``:
    finished ``train-seg --leave-out`` runs whose figures go into the segmenter's record."""
    loso = loso_summary(seg_loso) if seg_loso else None  # read first: a missing fold fails before an hour's work
    seg_src = (seg_run or runs / "lung-seg") / "model" / f"{SEGMENTER_ID}.safetensors"
    if seg_src.is_file():
        refuse_fold(seg_src)
    out.mkdir(parents=True, exist_ok=True)
    installed: list[str] = []
    precision: dict[str, Any] = {}
    plan_path: Path | None = None
    sample_images: list[np.ndarray] | None = None
    restorer = Restorer(device)
    val = (validation_films(validation, 0) or None) if validation else None
    if validation and val is None:
        log.warning("no held-out films in %s: default passes kept as trained", validation)
    for vid, variant in VARIANTS.items():
        src = runs / vid / "model" / f"{vid}.safetensors"
        if not src.is_file():
            log.warning("no trained model for %s in %s; skipped", vid, src.parent)
            continue
        state, manifest = load_state(src)
        # a model re-published without a new run (e.g. only given the new tone curve) keeps its record
        manifest.provenance["training_time"] = training_time(runs / vid) or manifest.provenance.get("training_time", {})
        if manifest.output_mode == "residual" and (runs / TONE_RUN / "model" / TONE_FILE).is_file():
            state = graft_tone_curve(state, runs / TONE_RUN, manifest)
        if (runs / HEADS_RUN / f"{vid}.safetensors").is_file():  # the head refitted after the curve
            state = graft_head(state, runs / HEADS_RUN, vid, manifest)
        init = manifest.provenance.get("config", {}).get("init_from")
        # started from earlier weights: say which (a re-published model keeps its record: its
        # ``init_from`` may by now name the installed file, i.e. itself)
        if init and Path(init).is_file() and "started_from" not in manifest.provenance:
            base = read_manifest(Path(init))
            manifest.provenance["started_from"] = {
                "sha256": base.sha256, "recipe": base.provenance.get("recipe", "paper"),
                "epochs_done": base.provenance.get("epochs_done"), "step": base.provenance.get("step")}
        plan_path = plan_path or runs / vid / "domains.json"
        if sample_images is None:
            plan = DomainPlan.load(plan_path)
            by_name = {it.name: it for it in read_labeled_folder(labeled)}
            sample_images = [read_gray(by_name[n].path) for n in plan.test_clean[:8]]
        if val is not None:  # on exactly what will ship (the tone curve given above included)
            with tempfile.TemporaryDirectory() as tmp:
                candidate = Path(tmp) / src.name
                save_model(candidate, state, dataclasses.replace(manifest, sha256=None))
                passes, choice = choose_passes(restorer, candidate, val, 0)
            manifest = dataclasses.replace(manifest, default_iterations=passes)
            manifest.provenance["passes_choice"] = choice
        size_mb = sum(v.numel() for v in state.values()) * 4 / 1e6
        use_half, errors = False, {}
        if size_mb > half_over_mb:
            use_half, errors = _half_ok_generator(state, variant.architecture, variant.q,
                                                  max(manifest.default_iterations, 3), sample_images,
                                                  manifest.output_mode)
        precision[vid] = {"float16": use_half, "fp16_vs_fp32_max_error": errors}
        manifest.provenance["storage"] = "float16 (checked within tolerance of float32)" if use_half else "float32"
        save_model(out / f"{vid}.safetensors", state, dataclasses.replace(manifest, sha256=None), half=use_half)
        installed.append(vid)
    if seg_src.is_file() and masks is not None:
        precision[SEGMENTER_ID] = install_segmenter(seg_src, out, masks)
    if not installed:
        raise TrainingError(runs, "no trained generator runs found (expected <runs>/<variant>/model/*.safetensors)")

    seg_file = out / f"{SEGMENTER_ID}.safetensors"
    report = evaluate_all(labeled=labeled, masks=masks if seg_file.is_file() else None, variants=[],
                          weights=[str(out / f"{v}.safetensors") for v in installed],
                          seg_weights=seg_file if seg_file.is_file() else None,
                          plan_path=plan_path, seed=0, test_fraction=0.2, iterations=[1, 2, 3], all_images=False,
                          device=device, external=external)
    report["precision"] = precision
    if loso and "segmentation" in report:
        report["segmentation"]["leave_one_source_out"] = loso
    for vid in installed:
        man = read_manifest(out / f"{vid}.safetensors")
        if "passes_choice" in man.provenance:
            report["restoration"][vid]["passes_choice"] = man.provenance["passes_choice"]
    heads = {vid: h for vid in installed
             if (h := read_manifest(out / f"{vid}.safetensors").provenance.get("covid_head"))}
    if heads:
        report["covid_heads"] = heads
    report["montage"] = write_montage(out / MONTAGE_NAME, labeled, plan_path, installed, out, restorer)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    for vid in installed:
        _add_metrics(out / f"{vid}.safetensors", report["restoration"][vid])
    if "segmentation" in report:
        _add_metrics(seg_file, report["segmentation"])
    (out / "EVALUATION.md").write_text(evaluation_markdown(report, out))
    (out / "MODEL_CARD.md").write_text(model_card(out, report))
    return report


def refuse_fold(seg_src: Path) -> None:
    """A leave-one-source-out fold never saw one source: its file is a figure, not a model to ship.
    Checked before anything is installed, so a wrong ``--seg-run`` costs seconds, not an hour."""
    left_out = read_manifest(seg_src).provenance.get("config", {}).get("leave_out")
    if left_out:
        raise TrainingError(seg_src, f"this run left the {left_out} films out of training (a leave-one-source-out "
                                     "fold): give it with --seg-loso, and ship a run trained on every source")


def install_segmenter(seg_src: Path, out: Path, masks: Path) -> dict[str, Any]:
    """Copy a trained segmenter into ``out`` (float16 when its masks stay within tolerance);
    returns the precision record."""
    state, manifest = load_state(seg_src)
    init = manifest.provenance.get("config", {}).get("init_from")
    if init and Path(init).is_file() and "fine_tuned_from" not in manifest.provenance:  # a fine-tune
        base = read_manifest(Path(init))
        manifest.provenance["fine_tuned_from"] = {
            "sha256": base.sha256, "input_size": base.input_size,
            "epochs_done": base.provenance.get("epochs_done"), "command": base.provenance.get("command")}
    images = [read_gray(pair.image) for pair in read_mask_folder(masks)[:8]]  # a bad folder: a clear error
    use_half, errors = _half_ok_segmenter(state, images, manifest.input_size or 256)
    manifest.provenance["storage"] = "float16 (checked within tolerance of float32)" if use_half else "float32"
    save_model(out / f"{SEGMENTER_ID}.safetensors", state, dataclasses.replace(manifest, sha256=None), half=use_half)
    return {"float16": use_half, "fp16_vs_fp32": errors}


def publish_segmenter(out: Path, masks: Path, seg_run: Path, device: torch.device,
                      seg_loso: list[Path] | None = None) -> dict[str, Any]:
    """Replace only the bundled segmenter: install ``seg_run``'s model, measure it, and rewrite
    its part of ``evaluation.json``, its sidecar, ``EVALUATION.md`` and ``MODEL_CARD.md``.

    Why: re-publishing everything re-measures every generator (about an hour on one core) and
    rewrites files whose weights did not change. The generators' figures are kept as recorded."""
    record = out / "evaluation.json"
    if not record.is_file():
        raise TrainingError(out, "no evaluation.json here: publish all models once before replacing the segmenter")
    report = json.loads(record.read_text())
    seg_src = seg_run / "model" / f"{SEGMENTER_ID}.safetensors"
    if not seg_src.is_file():
        raise TrainingError(seg_src, "no exported segmenter in this run "
                                     "(train-seg writes model/ at its first checkpoint)")
    refuse_fold(seg_src)
    loso = loso_summary(seg_loso) if seg_loso else None
    # measured in a folder beside the shipped file and moved in only when everything worked, so a
    # failure on the way leaves the installed segmenter and its figures as they were
    with tempfile.TemporaryDirectory(dir=out, prefix=".segmenter-") as tmp:
        staged = Path(tmp) / f"{SEGMENTER_ID}.safetensors"
        precision = install_segmenter(seg_src, Path(tmp), masks)
        seg = evaluate_segmenter(masks, staged, device, seed=0, all_images=False)
        if loso:
            seg["leave_one_source_out"] = loso
        _add_metrics(staged, seg)
        seg_file = out / staged.name
        staged.replace(seg_file)
        sidecar_path(staged).replace(sidecar_path(seg_file))
    report["segmentation"] = seg
    report.setdefault("precision", {})[SEGMENTER_ID] = precision
    report["segmentation_generated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record.write_text(json.dumps(report, indent=1))
    read_manifest(seg_file)  # the moved pair is still consistent
    (out / "EVALUATION.md").write_text(evaluation_markdown(report, out))
    (out / "MODEL_CARD.md").write_text(model_card(out, report))
    return report


MONTAGE_NAME = "montage.png"
MONTAGE_FILMS = 6
MONTAGE_TILE = 256


def write_montage(path: Path, labeled: Path, plan_path: Path | None, installed: list[str], models: Path,
                  restorer: Restorer) -> dict[str, Any]:
    """Rows: held-out CC BY films; columns: original, degraded (the independent blend), each
    variant at its default passes. Only CC BY films, credited in EVALUATION.md."""
    import cv2

    items = read_labeled_folder(labeled)
    licences = _licences(labeled)
    plan = DomainPlan.load(plan_path) if plan_path else None
    held = set(plan.test if plan else [it.name for it in items])
    films = [it for it in items if it.name in held and licences.get(it.name, ("", ""))[0].startswith("CC-BY (")]
    films = films[:MONTAGE_FILMS]
    rows, credits = [], []
    header = ["original", "degraded", *installed]
    for i, it in enumerate(films):
        full = read_gray(it.path)
        degraded = independent_blend(full, np.random.default_rng([0, 0x307A6E, i]))
        tiles = [to_square(full, MONTAGE_TILE), to_square(degraded, MONTAGE_TILE)]
        for vid in installed:
            tiles.append(restorer.restore(degraded, None, None, models / f"{vid}.safetensors").final)
        rows.append(np.hstack(tiles))
        credits.append({"file": it.name, "source": licences[it.name][1], "licence": licences[it.name][0]})
    if not rows:
        return {"films": []}
    grid = (np.clip(np.vstack(rows), 0, 1) * 255).round().astype(np.uint8)
    bar = np.full((28, grid.shape[1]), 255, np.uint8)
    for j, name in enumerate(header):
        cv2.putText(bar, name, (j * MONTAGE_TILE + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1, cv2.LINE_AA)
    cv2.imwrite(str(path), np.vstack([bar, grid]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return {"file": path.name, "columns": header, "films": credits,
            "degradation": "core.train.evaluate.independent_blend (blur, under-exposure, noise, JPEG)"}


def _licences(labeled: Path) -> dict[str, tuple[str, str]]:
    import csv

    with open(labeled / "labels.csv", newline="", encoding="utf-8") as f:
        return {row["file"]: (row.get("license_class", ""),
                              f"{row.get('source_repo', '')}/{row.get('source_path', '')}")
                for row in csv.DictReader(f)}


def _add_metrics(path: Path, metrics: dict[str, Any]) -> None:
    side = sidecar_path(path)
    data = json.loads(side.read_text())
    data["provenance"]["evaluation"] = metrics
    side.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    read_manifest(path)  # still consistent with the weights



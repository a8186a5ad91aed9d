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
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import TrainingError
from core.models import build_generator
from core.models.segmenter import build_segmenter
from core.restore import to_display, to_model_input
from core.train.data import read_gray, read_labeled_folder
from core.train.domains import DomainPlan
from core.train.evaluate import evaluate_all, format_report
from core.variants import SEGMENTER_ID, VARIANTS
from core.weights.model_file import load_state, read_manifest, save_model, sidecar_path

log = logging.getLogger(__name__)

HALF_IMAGE_TOL = 2.0 / 255.0  # max abs difference of display images after all passes
HALF_PROB_TOL = 2e-3
HALF_MASK_DICE = 0.995  # segmenter: masks from fp16 weights vs fp32 weights


def _half_ok_generator(state: dict[str, torch.Tensor], arch: str, q: int | None, iterations: int,
                       images: list[np.ndarray]) -> tuple[bool, dict[str, float]]:
    full = build_generator(arch, q).eval()
    full.load_state_dict(state)
    half = build_generator(arch, q).eval()
    half.load_state_dict({k: v.half().float() for k, v in state.items()})
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


def publish(runs: Path, out: Path, labeled: Path, masks: Path | None, device: torch.device,
            half_over_mb: float = 8.0, seg_run: Path | None = None) -> dict[str, Any]:
    """Install every trained generator run under ``runs`` and the segmenter of ``seg_run``
    (default ``runs/lung-seg``), then evaluate what was installed."""
    out.mkdir(parents=True, exist_ok=True)
    installed: list[str] = []
    precision: dict[str, Any] = {}
    plan_path: Path | None = None
    sample_images: list[np.ndarray] | None = None
    for vid, variant in VARIANTS.items():
        src = runs / vid / "model" / f"{vid}.safetensors"
        if not src.is_file():
            log.warning("no trained model for %s in %s; skipped", vid, src.parent)
            continue
        state, manifest = load_state(src)
        plan_path = plan_path or runs / vid / "domains.json"
        if sample_images is None:
            plan = DomainPlan.load(plan_path)
            by_name = {it.name: it for it in read_labeled_folder(labeled)}
            sample_images = [read_gray(by_name[n].path) for n in plan.test_clean[:8]]
        size_mb = sum(v.numel() for v in state.values()) * 4 / 1e6
        use_half, errors = False, {}
        if size_mb > half_over_mb:
            use_half, errors = _half_ok_generator(state, variant.architecture, variant.q,
                                                  variant.default_iterations, sample_images)
        precision[vid] = {"float16": use_half, "fp16_vs_fp32_max_error": errors}
        manifest.provenance["storage"] = "float16 (checked within tolerance of float32)" if use_half else "float32"
        save_model(out / f"{vid}.safetensors", state, dataclasses.replace(manifest, sha256=None), half=use_half)
        installed.append(vid)
    seg_src = (seg_run or runs / "lung-seg") / "model" / f"{SEGMENTER_ID}.safetensors"
    if seg_src.is_file() and masks is not None:
        state, manifest = load_state(seg_src)
        init = manifest.provenance.get("config", {}).get("init_from")
        if init and Path(init).is_file():  # a fine-tune: record what it started from
            base = read_manifest(Path(init))
            manifest.provenance["fine_tuned_from"] = {
                "sha256": base.sha256, "input_size": base.input_size,
                "epochs_done": base.provenance.get("epochs_done"), "command": base.provenance.get("command")}
        images = [read_gray(p) for p in sorted((masks / "images").iterdir())[:8]]
        use_half, errors = _half_ok_segmenter(state, images, manifest.input_size or 256)
        precision[SEGMENTER_ID] = {"float16": use_half, "fp16_vs_fp32": errors}
        manifest.provenance["storage"] = "float16 (checked within tolerance of float32)" if use_half else "float32"
        save_model(out / f"{SEGMENTER_ID}.safetensors", state, dataclasses.replace(manifest, sha256=None),
                   half=use_half)
    if not installed:
        raise TrainingError(runs, "no trained generator runs found (expected <runs>/<variant>/model/*.safetensors)")

    report = evaluate_all(labeled=labeled, masks=masks if seg_src.is_file() else None, variants=[],
                          weights=[str(out / f"{v}.safetensors") for v in installed],
                          seg_weights=out / f"{SEGMENTER_ID}.safetensors" if seg_src.is_file() else None,
                          plan_path=plan_path, seed=0, test_fraction=0.2, iterations=[1, 2, 3], all_images=False,
                          device=device)
    report["precision"] = precision
    (out / "evaluation.json").write_text(json.dumps(report, indent=1))
    for vid in installed:
        _add_metrics(out / f"{vid}.safetensors", report["restoration"][vid])
    if "segmentation" in report:
        _add_metrics(out / f"{SEGMENTER_ID}.safetensors", report["segmentation"])
    (out / "EVALUATION.md").write_text(evaluation_markdown(report, out))
    (out / "MODEL_CARD.md").write_text(model_card(out, report))
    return report


def _add_metrics(path: Path, metrics: dict[str, Any]) -> None:
    side = sidecar_path(path)
    data = json.loads(side.read_text())
    data["provenance"]["evaluation"] = metrics
    side.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    read_manifest(path)  # still consistent with the weights


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def evaluation_markdown(report: dict[str, Any], out: Path) -> str:
    lines = ["# Evaluation of the bundled weights", "",
             f"Produced by `r2c-review publish` (which runs the same code as `r2c-review evaluate`) on "
             f"{report['generated']}, device `{report['device']}`.", "",
             f"Split: {report.get('split', 'n/a')}. Restoration figures are at the model's 256x256 size.", ""]
    rest = report.get("restoration", {})
    if rest:
        lines += ["## Restoration", "",
                  "(a) clean held-out images degraded with a fixed seed, then restored: PSNR/SSIM against the clean "
                  "image. (b) clean (high-quality) held-out images restored: PSNR/SSIM against the input.", "",
                  "| variant | epochs | degraded input PSNR / SSIM | restored x1 | x2 | x3 | gain x1 / x3 (dB) "
                  "| high-quality kept x1 | x3 |", "|---|---|---|---|---|---|---|---|---|"]
        for vid, r in rest.items():
            d, h = r["degraded"]["per_iteration"], r["high_quality"]["per_iteration"]
            g = r["degraded"]["psnr_gain_db"]
            lines.append(
                f"| {vid} | {_f(r.get('epochs_done'), 1)} | {_f(d['0']['psnr'])} / {_f(d['0']['ssim'], 3)} "
                f"| {_f(d['1']['psnr'])} / {_f(d['1']['ssim'], 3)} | {_f(d['2']['psnr'])} / {_f(d['2']['ssim'], 3)} "
                f"| {_f(d['3']['psnr'])} / {_f(d['3']['ssim'], 3)} | {g['1']:+.2f} / {g['3']:+.2f} "
                f"| {_f(h['1']['psnr'])} / {_f(h['1']['ssim'], 3)} | {_f(h['3']['psnr'])} / {_f(h['3']['ssim'], 3)} |")
        lines += ["", "## COVID-19 classification (generator class head, first pass, threshold 0.5)", "",
                  "| variant | n | accuracy | sensitivity | specificity | precision | F1 | F2 |",
                  "|---|---|---|---|---|---|---|---|"]
        for vid, r in rest.items():
            c = r["classification"]["overall"]
            lines.append(f"| {vid} | {c['n']} | {_f(c['accuracy'], 3)} | {_f(c['sensitivity'], 3)} "
                         f"| {_f(c['specificity'], 3)} | {_f(c['precision'], 3)} | {_f(c['f1'], 3)} "
                         f"| {_f(c['f2'], 3)} |")
        lines += ["", "Per data source (accuracy; n):", ""]
        for vid, r in rest.items():
            per = "; ".join(f"{src.split('/')[-1]} {_f(m['accuracy'], 2)} (n={m['n']}, covid {m['covid']})"
                            for src, m in r["classification"]["by_source"].items())
            lines.append(f"- {vid}: {per}")
        first = next(iter(rest.values()))
        lines += ["", f"Caveat: {first['classification']['note']}.", ""]
    seg = report.get("segmentation")
    if seg:
        lines += ["## Lung segmentation", "", "| dataset | n | Dice | IoU | worst Dice |", "|---|---|---|---|---|"]
        for name, v in seg["by_dataset"].items():
            lines.append(f"| {name} | {v['n']} | {_f(v['dice'], 4)} | {_f(v['iou'], 4)} | {_f(v['dice_min'], 4)} |")
        s = seg["standard_convention"]
        lines += [f"| **standard convention, all** | {s['n']} | **{_f(s['dice'], 4)}** | {_f(s['iou'], 4)} | |", "",
                  f"Note: {seg['note']}.", ""]
    if report.get("precision"):
        lines += ["## Storage precision", ""]
        for k, v in report["precision"].items():
            lines.append(f"- {k}: {'float16' if v['float16'] else 'float32'} "
                         f"{json.dumps(v.get('fp16_vs_fp32_max_error') or v.get('fp16_vs_fp32'))}")
        lines.append("")
    lines += ["## Raw figures", "", "```", format_report(report), "```", ""]
    return "\n".join(lines)


MODEL_CARD_INTRO = """# Model card: the bundled R2C Review weights

These weights were produced by R2C Review's own training code on public chest X-rays. They are
**for research use only**: the training images come under mixed licences (CC BY, CC BY-NC,
CC BY-NC-ND, CC BY-NC-SA, research-only, NIH), several of which forbid commercial use. They are
**not** the R2C-GAN authors' weights (those can be imported with `r2c-review import-tf`) and are
not a medical device.

## Data

* Generators: `../shared/data/cxr_labeled` — 360 PNGs (COVID-19 vs control) from the COVID-19 image
  data collection, the Figure1 and Actualmed COVID-19 sets and the Montgomery/Shenzhen screening
  sets. Split by patient (`patient_key`): about 80 % train, 20 % held out, stratified by label and
  source (seed 0).
* Segmenter: `../shared/data/lung_masks` — Shenzhen (manual masks) and gbcovid (radiologist masks)
  pairs with the standard lung-field convention (heart excluded); 20 % of each held out by a hash of
  the file name. The 110 `v7covid` pairs (retrocardiac region included: another convention) were not
  trained on and serve as a robustness check.

## Recipe

**Domains** (nobody labelled image quality; `core/train/domains.py`): training images are ranked by
no-reference measures (noise, sharpness, contrast, clipping; `core/quality.py`). The better half is
the clean pool, the rest is real poor quality. The clean pool is split by patient: 60 % form domain
B (high quality); 40 % are held apart and degraded on the fly with a blind blend of 2-4 artifacts
(spatially varying noise, random blur kernels, under/over-exposure, low contrast, saturation, JPEG;
`core/degrade.py`). Domain A (poor quality) = real poor images + degraded held-apart images. B and
the degraded part of A never share a patient.

**R2C-GAN training** (`core/train/gan.py`, as the authors' `train.py`): unpaired CycleGAN with both
generators and both discriminators, least-squares GAN losses, cycle ×10 and identity ×5 L1 losses,
the generators' class heads trained with cross-entropy weighted 0.1 / 0.01 / 0.02 inside the
adversarial / cycle / identity terms, Adam 2e-4 (beta1 0.5), pool of 50 generated images, images
loaded at 286×286, randomly cropped to 256×256 and flipped, batch size 1. The authors train 2000
epochs with the learning rate decaying linearly to zero after epoch 100; on this project's 2-core CPU
that is out of reach, so each variant got a shorter schedule with the same shape (constant, then
linear decay to zero over the second half), listed below. The shipped generator is G_A2B
(poor -> high quality). One deviation: with Q=5, the authors' Q=5 operational discriminators diverged
here (their x^5 terms of unbounded features drove the least-squares loss to 1e8 within ten steps), so
the Q=5 generators were trained against Q=3 operational discriminators (`--disc-q 3`).

**Segmenter** (`core/train/seg.py`): U-Net with a DenseNet-121 encoder (segmentation-models-pytorch,
no pretrained weights: nothing may be downloaded), one grayscale input channel standardised per image,
trained at 256×256 and, where the table says so, fine-tuned at a larger input size (`--init-from`),
Dice + BCE loss, Adam 1e-3 with warm-up and cosine decay, batch 8; augmentation: rotation
±10°, scale 0.9-1.1, shifts, gamma/contrast/brightness, and for a third of the samples the same
artifact blend as above. Post-processing keeps the two largest components and fills holes.

**Reproduce:** `packaging/train-bundled-weights.sh` (resumable), the segmenter command it names, then
`r2c-review publish --runs runs --labeled ../shared/data/cxr_labeled --masks ../shared/data/lung_masks`.

## The models
"""


def model_card(out: Path, report: dict[str, Any]) -> str:
    lines = [MODEL_CARD_INTRO, "| file | model | input | parameters | epochs trained (of schedule) | steps "
             "| storage | hardware | sha256 |", "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(out.glob("*.safetensors")):
        man = read_manifest(path)
        prov = man.provenance
        cfg = prov.get("config", {})
        state, _ = load_state(path, man)
        params = sum(v.numel() for v in state.values())
        epochs = f"{prov.get('epochs_done', '?')} (of {cfg.get('epochs', '?')})"
        if base := prov.get("fine_tuned_from"):
            epochs = f"{base.get('epochs_done', '?')} at {base.get('input_size')}, then {epochs} at {man.input_size}"
        lines.append(f"| `{path.name}` | {man.display_name} | {man.input_size} | {params:,} | {epochs} "
                     f"| {prov.get('step', '?')} | {prov.get('storage', man.dtype)} "
                     f"| {prov.get('hardware', '?')} | `{(man.sha256 or '')[:16]}…` |")
    lines += ["", "Training commands are recorded in each model's manifest (`*.json`, `provenance.command` and "
              "`provenance.config`).", "", "## How good are they", ""]
    rest = report.get("restoration", {})
    for vid, r in rest.items():
        g = r["degraded"]["psnr_gain_db"]
        h = r["high_quality"]["per_iteration"]
        c = r["classification"]["overall"]
        lines.append(f"* **{vid}**: restoring degraded held-out images {g['1']:+.2f} dB PSNR after one pass, "
                     f"{g['3']:+.2f} dB after three (bar: +3 dB); high-quality inputs kept at "
                     f"{h['1']['psnr']:.1f} / {h['3']['psnr']:.1f} dB after one / three passes (bar: 35 dB); "
                     f"COVID-19 classification F1 {c['f1']:.3f} (bar: 0.90).")
    seg = report.get("segmentation")
    if seg:
        s = seg["standard_convention"]
        lines.append(f"* **lung segmenter**: mean Dice {s['dice']:.4f} on {s['n']} held-out standard-convention "
                     f"pairs (bar: 0.95).")
    lines += ["", "Full figures, per pass count and per data source: `EVALUATION.md` (written by the same run of "
              "`r2c-review publish`; `r2c-review evaluate` reproduces them).", "",
              "## Limitations, honestly", "",
              "* Training stopped far short of the authors' 2000 epochs (CPU only); restorations are those of "
              "early-stage GANs and can show checkerboard texture from the transposed convolutions.",
              "* Poor image quality was defined by no-reference measures and synthetic degradations, not by "
              "radiologists.",
              "* Source and label are confounded in the public data (COVID-19 images are mostly paper figures "
              "and portable films; controls mostly screening films): the class head may recognise the source "
              "rather than the disease. The per-source figures in EVALUATION.md show this.",
              "* Evaluation sets are small (tens of images); treat every figure as indicative.", ""]
    return "\n".join(lines)

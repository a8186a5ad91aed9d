"""``r2c-review models | restore | segment | import-tf``: the engine from the command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from core.errors import R2CError


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list restoration variants, their weights and the compute device")
    m.add_argument("--device", default=None)
    m.set_defaults(handler=_models)

    r = sub.add_parser("restore", help="restore X-rays with an R2C-GAN variant")
    r.add_argument("inputs", nargs="+", type=Path, help="files or folders")
    r.add_argument("--variant", default=None, help="variant id (see 'r2c-review models')")
    r.add_argument("--weights", type=Path, default=None, help="model file (.safetensors) instead of the installed one")
    r.add_argument("--iterations", type=int, default=None, help="restoration passes (default: the model's)")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--all-iterations", action="store_true", help="also write the image after every pass")
    r.add_argument("--resolution", choices=["native", "model"], default="native",
                   help="native (default): the film's own size, by guided upsampling of the generator's change; "
                        "model: the generator's 256-px result at the film's aspect ratio")
    r.add_argument("--original-size", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    r.add_argument("--format", dest="fmt", choices=["png", "dicom"], default="png",
                   help="png, or dicom: a DICOM Secondary Capture with the source's identity, size and spacing")
    r.add_argument("--bits", type=int, choices=[8, 16], default=8, help="bit depth of the written images")
    r.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: 8 on GPU, 1 on CPU)")
    r.add_argument("--show-unreliable-probability", action="store_true",
                   help="write the COVID-19 probability even when the model's out-of-source AUC is below "
                        "0.75 or was never measured (withheld by default; research use, not for diagnosis)")
    r.add_argument("--device", default=None)
    r.set_defaults(handler=_restore)

    s = sub.add_parser("segment", help="segment the lungs of X-rays (mask PNG, overlay PNG, lung areas CSV)")
    s.add_argument("inputs", nargs="+", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--weights", type=Path, default=None)
    s.add_argument("--format", dest="fmt", choices=["png", "dicom-seg"], default="png",
                   help="png: mask and overlay PNGs; dicom-seg: a DICOM Segmentation over each DICOM film")
    s.add_argument("--device", default=None)
    s.set_defaults(handler=_segment)

    t = sub.add_parser("import-tf", help="convert the authors' TensorFlow checkpoint into an app model file")
    t.add_argument("checkpoint", type=Path, help="checkpoint folder, prefix (…/ckpt-N) or .index file")
    t.add_argument("--arch", required=True, choices=["operational", "convolutional", "convolutional-light"])
    t.add_argument("--q", type=int, default=None)
    t.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    t.add_argument("--root", default="G_A2B", help="generator to take from a train.py checkpoint (G_A2B or G_B2A)")
    t.set_defaults(handler=_import_tf)


def _models(args: argparse.Namespace) -> int:
    from core.device import describe, pick_device
    from core.variants import SEGMENTER_ID, VARIANTS, weights_path
    from core.weights.model_file import read_manifest

    print(f"device: {describe(pick_device(args.device))}")
    print(f"{'variant':<15} {'name':<17} {'arch':<20} {'q':>2} {'iter':>4}  weights")
    for v in VARIANTS.values():
        path = weights_path(v.id)
        status = "not installed"
        passes = v.default_iterations
        if path:
            try:
                man = read_manifest(path)
                passes = man.default_iterations
                epochs = man.provenance.get("epochs_done")
                status = f"{path} (sha256 {man.sha256[:12] if man.sha256 else '?'}…" + (
                    f", {epochs} epochs)" if epochs is not None else ")")
            except R2CError as exc:
                status = f"{path} — UNUSABLE: {exc.reason}"
        print(f"{v.id:<15} {v.display_name:<17} {v.architecture:<20} {v.q or '-':>2} {passes:>4}  "
              f"{status}")
    seg = weights_path(SEGMENTER_ID)
    print(f"{'lung segmenter':<15} {'U-Net DenseNet-121':<17}: {seg or 'not installed'}")
    return 0


def _expand(inputs: list[Path]) -> Iterator[Path]:
    from core.imaging import is_supported, iter_images

    for p in inputs:
        if p.is_dir():
            yield from iter_images(p)
        elif p.exists() and not is_supported(p):
            print(f"r2c-review: error: {p}: not a supported image type", file=sys.stderr)
        else:
            yield p


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    if data.ndim == 3:
        data = cv2.cvtColor(data, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", data)
    if not ok:
        raise R2CError(path, "cannot encode PNG")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)


def _unique_stem(stem: str, used: set[str]) -> str:
    name, n = stem, 1
    while name in used:
        name = f"{stem}-{n}"
        n += 1
    used.add(name)
    return name


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="image", disable=total < 2, file=sys.stderr, dynamic_ncols=True)


def _load_all(paths: list[Path]) -> tuple[list, int]:
    """Load each input; report bad ones in one line and keep going."""
    from core.imaging import load_xray_isolated

    loaded, failed = [], 0
    for p in paths:
        try:
            loaded.append(load_xray_isolated(p))  # a decoder crash fails one file, not the batch
        except R2CError as exc:
            print(f"r2c-review: error: {exc.one_line()}", file=sys.stderr)
            failed += 1
    return loaded, failed


def _restore(args: argparse.Namespace) -> int:
    from core.classifier_display import probability_display
    from core.exports import RestoredImage, write_dicom_sc, write_png
    from core.guided import native_restoration
    from core.restore import Restorer
    from core.variants import VARIANTS

    if args.variant is None and args.weights is None:
        raise R2CError(None, "give --variant (see 'r2c-review models') or --weights FILE")
    restorer = Restorer(args.device)
    loaded = restorer.generator(args.variant, args.weights)  # fail early on missing/bad weights
    xrays, failed = _load_all(list(_expand(args.inputs)))
    used: set[str] = set()
    vid = args.variant or loaded.manifest.variant_id
    provenance = loaded.manifest.provenance
    rows: list[dict] = []
    with _progress(len(xrays), f"restore {vid}") as bar:
        step = args.batch_size or (8 if restorer.device.type == "cuda" else 1)
        for start in range(0, len(xrays), step):
            chunk = xrays[start : start + step]
            results = restorer.restore_many([x.display for x in chunk], args.variant, args.iterations, args.weights,
                                            batch_size=step)
            for xr, res in zip(chunk, results, strict=True):
                stem = _unique_stem(xr.source.stem, used)
                passes = range(1, res.iterations + 1) if args.all_iterations else [res.iterations]
                for i in passes:
                    native = args.resolution == "native"
                    pixels = native_restoration(xr.display, res.images[i - 1]) if native else res.images[i - 1]
                    name = VARIANTS[vid].display_name if vid in VARIANTS else vid
                    image = RestoredImage.from_xray(xr, pixels, vid, name, i, res.model_sha256, args.resolution)
                    if args.fmt == "dicom":
                        write_dicom_sc(args.out / f"{stem}_{vid}_x{i}.dcm", image, args.bits)
                    else:
                        write_png(args.out / f"{stem}_{vid}_x{i}.png", image, args.bits)
                first = probability_display(res.covid_probability, provenance, args.show_unreliable_probability)
                last = probability_display(float(res.probs[-1][1]), provenance, args.show_unreliable_probability)
                rows.append({"file": str(xr.source), "output_stem": stem, "variant": vid,
                             "iterations": res.iterations, "p_covid_pass1": first.csv_value(),
                             "p_covid_last_pass": last.csv_value(),
                             "out_of_source_auc": "" if first.auc is None else f"{first.auc:.3f}",
                             "note": first.detail})
            bar.update(len(chunk))
    _write_csv(args.out / "classification.csv", rows)
    print(f"restored {len(xrays)} image(s) into {args.out}" + (f"; {failed} failed" if failed else ""))
    if rows:
        print(f"classification.csv: {rows[0]['note']}")
    return 1 if failed else 0


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["file"])
        writer.writeheader()
        writer.writerows(rows)


def _segment(args: argparse.Namespace) -> int:
    from core.exports import write_dicom_seg
    from core.segment import LungSegmenter, overlay

    segmenter = LungSegmenter(args.weights, args.device)
    seg_version = f"sha256:{(getattr(segmenter.manifest, 'sha256', None) or 'unknown')[:16]}"
    xrays, failed = _load_all(list(_expand(args.inputs)))
    args.out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    rows = []
    with _progress(len(xrays), "segment") as bar:
        for xr in xrays:
            seg = segmenter.segment(xr.display, xr.pixel_spacing)
            stem = _unique_stem(xr.source.stem, used)
            if args.fmt == "dicom-seg":
                try:
                    write_dicom_seg(args.out / f"{stem}_lungs.seg.dcm", seg.mask, xr.source, seg_version)
                except R2CError as exc:
                    print(f"r2c-review: error: {exc.one_line()}", file=sys.stderr)
                    failed += 1
                    bar.update(1)
                    continue
            else:
                _write_png(args.out / f"{stem}_mask.png", seg.mask.astype(np.uint8) * 255)
                _write_png(args.out / f"{stem}_overlay.png", overlay(xr.display, seg.mask))
            a = seg.areas
            rows.append({"file": xr.source.name, "lung_px": a.total_px, "lung_fraction": round(a.fraction, 4),
                         "image_left_px": a.image_left_px, "image_right_px": a.image_right_px,
                         "lung_mm2": round(a.total_mm2, 1) if a.total_mm2 is not None else ""})
            bar.update(1)
    _write_csv(args.out / "lung_areas.csv", rows)
    print(f"segmented {len(xrays)} image(s) into {args.out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _import_tf(args: argparse.Namespace) -> int:
    from core.variants import variant_for
    from core.weights.model_file import Manifest, save_model
    from core.weights.tf_checkpoint import resolve_prefix
    from core.weights.tf_import import import_tf_checkpoint

    state = import_tf_checkpoint(args.checkpoint, args.arch, args.q, root=args.root)
    variant = variant_for(args.arch, args.q if args.arch == "operational" else None)
    vid = variant.id if variant else f"{args.arch}-q{args.q}"
    manifest = Manifest(
        variant_id=vid,
        display_name=variant.display_name if variant else vid,
        kind="generator",
        architecture=args.arch,
        q=args.q if args.arch == "operational" else None,
        default_iterations=variant.default_iterations if variant else 1,
        provenance={"source": "imported from a TensorFlow checkpoint of the authors' code (meteahishali/R2C-GAN)",
                    "checkpoint": str(resolve_prefix(args.checkpoint)), "root": args.root},
    )
    saved = save_model(args.out, state, manifest)
    print(f"wrote {args.out} ({saved.display_name}, sha256 {saved.sha256}) and {args.out.with_suffix('.json')}")
    return 0

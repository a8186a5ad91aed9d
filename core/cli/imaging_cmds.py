"""``r2c-review convert``: display-ready 8-bit PNGs from any supported X-ray file.

The PNGs carry pixels only (no text chunks, so no identifiers). A bad file is reported
in one line and the others are still converted; the exit status says whether all worked.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.errors import ImageLoadError
from core.imaging import Window, iter_images, load_xray_isolated, to_uint8

log = logging.getLogger(__name__)


def _window_arg(text: str) -> Window:
    try:
        center_text, width_text = text.split(",")
        center, width = float(center_text), float(width_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CENTER,WIDTH (two numbers), got {text!r}") from None
    if not width > 0:
        raise argparse.ArgumentTypeError(f"window width must be positive, got {width:g}")
    # DICOM LINEAR needs width >= 1; narrower windows (float data) use the exact ramp.
    return Window(center, width, "Command line", "LINEAR" if width >= 1 else "LINEAR_EXACT")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="write display-ready 8-bit PNGs (no identifiers) of X-ray files or folders",
        description="Convert DICOM, PNG, JPEG or TIFF radiographs to display-ready 8-bit PNGs of the "
        "same size, with the full DICOM display chain applied and no patient data written.",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="files and/or folders")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--window",
        type=_window_arg,
        metavar="CENTER,WIDTH",
        help="window in the file's modality values instead of its default window",
    )
    parser.add_argument("--invert", action="store_true", help="write a negative (swap black and white)")
    parser.set_defaults(handler=convert)


def collect_inputs(inputs: Iterable[Path]) -> tuple[list[Path], list[ImageLoadError]]:
    """Files to convert (folders expanded, recursively) and the inputs that do not exist."""
    files: list[Path] = []
    missing: list[ImageLoadError] = []
    for item in inputs:
        if item.is_dir():
            files.extend(iter_images(item, recursive=True))
        elif item.exists():
            files.append(item)
        else:
            missing.append(ImageLoadError(item, "file not found"))
    return files, missing


def output_names(files: list[Path], out_dir: Path) -> list[Path]:
    """``stem.png`` per input; repeated stems get -1, -2... (case-insensitively, for Windows/macOS)."""
    taken: set[str] = set()
    names = []
    for file in files:
        stem = file.stem or file.name
        name, n = f"{stem}.png", 0
        while name.lower() in taken:
            n += 1
            name = f"{stem}-{n}.png"
        taken.add(name.lower())
        names.append(out_dir / name)
    return names


def write_png_atomic(path: Path, pixels: np.ndarray) -> None:
    """Encode, write to a temporary file beside the target, then rename over it."""
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise OSError(f"PNG encoding failed for {path.name}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encoded.tobytes())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _synthetic(path: Path) -> bool:
    from core.synthesize import is_marked_synthetic

    return is_marked_synthetic(path)


def _write_synthetic(src: Path, dst: Path, pixels: np.ndarray) -> Path:
    """A converted synthetic film keeps SYNTHETIC in its name and its PNG text chunks."""
    from core.exports.synthetic import MARK, write_synthetic_png

    if MARK not in dst.name:
        dst = dst.with_name(f"{dst.stem}_{MARK}.png")
    gray = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    return write_synthetic_png(dst, gray.astype(np.float32) / 255.0,
                               f"{MARK} IMAGE - NOT A REAL RADIOGRAPH (converted from {src.name})")


def _report(message: str) -> None:
    tqdm.write(f"r2c-review: error: {message}", file=sys.stderr)


def convert(args: argparse.Namespace) -> int:
    """Handler of ``convert``: 0 when every input converted, 1 when any failed."""
    files, failures = collect_inputs(args.inputs)
    for error in failures:
        _report(error.one_line())
    if not files:
        if not failures:
            _report("no supported images found in " + ", ".join(str(p) for p in args.inputs))
        return 1
    out_dir: Path = args.out
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _report(f"{out_dir}: cannot create output folder ({exc.strerror or exc})")
        return 1
    failed = len(failures)
    show_bar = len(files) > 1 and sys.stderr.isatty()
    pairs = zip(files, output_names(files, out_dir), strict=True)
    for src, dst in tqdm(pairs, total=len(files), unit="image", file=sys.stderr, disable=not show_bar):
        try:
            xray = load_xray_isolated(src)  # a decoder crash fails this file, the rest go on
            invert = xray.invert != bool(args.invert)
            if args.window is None and not args.invert:
                pixels = xray.to_uint8()
            else:
                pixels = to_uint8(xray.render(args.window, invert))
            if _synthetic(src):  # a synthetic film stays marked as one (core/exports/synthetic.py)
                dst = _write_synthetic(src, dst, pixels)
            else:
                write_png_atomic(dst, pixels)
            log.info("%s -> %s", src, dst)
        except ImageLoadError as exc:
            failed += 1
            _report(exc.one_line())
        except OSError as exc:
            failed += 1
            _report(f"{dst}: cannot write ({exc.strerror or exc})")
    return 1 if failed else 0

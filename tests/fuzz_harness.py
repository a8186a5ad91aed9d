"""Fuzzing the X-ray loader: a fixed-seed corpus of mutated files, each loaded in a capped child.

Seeds are small files made here (every DICOM transfer syntax the loader reads, PNG, JPEG,
TIFF) plus, when given, real files. Each corpus file ``i`` is a pure function of
``(seed, i)``: one mutation drawn from bit flips, byte overwrites, truncation, DICOM header
fields set to odd values, declared-size bombs (DICOM rows/columns, JPEG 2000 SIZ, PNG
IHDR, a deflate bomb), chunk/segment length corruption and mislabelling (a JPEG 2000
monochrome codestream tagged RGB, which made GDCM abort the process).

Every file is loaded with ``load_xray`` in a forked child with an address-space limit and a
time limit; the outcome is one of:

* ``loaded`` (with finite display pixels) or ``error`` (an ImageLoadError with a plain reason);
* anything else is a defect: ``other-exception``, ``nonfinite``, ``internal-text`` (an error
  reason leaking internals), ``signal`` (native abort/segfault), ``timeout``.

Used by ``tests/test_fuzz_loader.py`` (a few hundred files) and ``benchmarks/fuzz_loader.py``
(10,000 files). Run directly: ``python -m tests.fuzz_harness --count 300 [--real DIR] [--json FILE]``.
Linux only (fork, wait4, RLIMIT_AS).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import re
import select
import signal
import struct
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GOOD = ("loaded", "error")
_INTERNAL = re.compile(r"[A-Z][a-zA-Z]+(Error|Exception)\b|unpack requires|buffer of \d+|Errno|has no attribute|"
                       r"Traceback|object is not|index out of range|invalid literal")


# ------------------------------------------------------------------------------------------ seeds


def _png(arr: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", arr)
    assert ok
    return data.tobytes()


def synthetic_seeds() -> dict[str, bytes]:
    """Small files of every kind the loader reads, made from the test phantom."""
    import pydicom
    from PIL import Image
    from pydicom.uid import (
        JPEG2000,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGBaseline8Bit,
        JPEGLossless,
        JPEGLSLossless,
        RLELossless,
    )

    from tests.imaging_fixtures import make_dataset, phantom, stored_pixels, write_dicom

    density = phantom(64, 56)
    seeds: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        specs = [
            ("native16.dcm", 12, "MONOCHROME2", ExplicitVRLittleEndian, {}),
            ("implicit_mono1.dcm", 10, "MONOCHROME1", ImplicitVRLittleEndian,
             {"RescaleSlope": 2, "RescaleIntercept": -5}),
            ("bigendian.dcm", 12, "MONOCHROME2", ExplicitVRBigEndian, {"WindowCenter": 2000, "WindowWidth": 3000}),
            ("deflated.dcm", 12, "MONOCHROME2", DeflatedExplicitVRLittleEndian, {}),
            ("rle.dcm", 12, "MONOCHROME2", RLELossless, {}),
            ("j2k_lossless.dcm", 12, "MONOCHROME2", JPEG2000Lossless, {}),
            ("j2k_lossy.dcm", 12, "MONOCHROME1", JPEG2000, {}),
            ("jpegls.dcm", 12, "MONOCHROME2", JPEGLSLossless, {}),
            ("jpeg_baseline.dcm", 8, "MONOCHROME2", JPEGBaseline8Bit, {}),
            ("jpeg_lossless.dcm", 12, "MONOCHROME2", JPEGLossless, {}),
        ]
        for name, bits, photometric, syntax, extra in specs:
            ds = make_dataset(stored_pixels(density, bits, monochrome1=photometric == "MONOCHROME1"), bits,
                              photometric, **extra)
            path = Path(tmp) / name
            try:
                write_dicom(ds, path, syntax)
            except Exception:  # an encoder missing here: fuzz the others
                continue
            seeds[name] = path.read_bytes()
        rgb = np.dstack([stored_pixels(density, 8)] * 3)
        rgb[..., 0] //= 2
        ds = make_dataset(rgb, 8, "RGB")
        write_dicom(ds, Path(tmp) / "rgb.dcm")
        seeds["rgb.dcm"] = (Path(tmp) / "rgb.dcm").read_bytes()
        # the abort case: a JPEG 2000 monochrome codestream whose header says RGB
        if "j2k_lossless.dcm" in seeds:
            ds = pydicom.dcmread(io.BytesIO(seeds["j2k_lossless.dcm"]))
            ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
            buffer = io.BytesIO()
            ds.save_as(buffer)
            seeds["j2k_tagged_rgb.dcm"] = buffer.getvalue()
    gray8 = stored_pixels(density, 8)
    seeds["gray8.png"] = _png(gray8)
    seeds["gray16.png"] = _png(stored_pixels(density, 12))
    seeds["rgb.png"] = _png(np.ascontiguousarray(rgb[..., ::-1]))
    buffer = io.BytesIO()
    Image.fromarray(gray8).save(buffer, format="JPEG", quality=90)
    seeds["gray.jpg"] = buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(stored_pixels(density, 12)).save(buffer, format="TIFF")
    seeds["gray16.tif"] = buffer.getvalue()
    return seeds


def real_seeds(folder: Path, max_files: int = 8, limit_bytes: int = 2 << 20) -> dict[str, bytes]:
    """The first ``max_files`` DICOM/PNG/JPEG files in ``folder`` up to 2 MB each (bigger ones decode slowly)."""
    seeds = {}
    for path in sorted(folder.iterdir()):
        if len(seeds) >= max_files:
            break
        if path.suffix.lower() in (".dcm", ".png", ".jpg", ".jpeg") and path.stat().st_size <= limit_bytes:
            seeds[f"real:{path.name}"] = path.read_bytes()
    return seeds


# -------------------------------------------------------------------------------------- mutations


def _flip_bits(rng: np.random.Generator, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 24))):
        i = int(rng.integers(0, len(out)))
        out[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def _overwrite(rng: np.random.Generator, data: bytes) -> bytes:
    out = bytearray(data)
    start = int(rng.integers(0, len(out)))
    n = int(rng.integers(1, 64))
    value = int(rng.choice([0x00, 0xFF, 0x7F, 0x80]))
    out[start:start + n] = bytes([value]) * len(out[start:start + n])
    return bytes(out)


def _truncate(rng: np.random.Generator, data: bytes) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


_FIELDS = {
    "Rows": [0, 1, 3, 255, 4096, 60000, 65535],
    "Columns": [0, 1, 3, 255, 4096, 60000, 65535],
    "BitsAllocated": [0, 1, 7, 8, 12, 16, 32, 64, 255],
    "BitsStored": [0, 1, 8, 12, 16, 17, 32, 255],
    "HighBit": [0, 7, 15, 31, 255],
    "SamplesPerPixel": [0, 1, 2, 3, 4, 65535],
    "PixelRepresentation": [0, 1, 2],
    "PhotometricInterpretation": ["RGB", "MONOCHROME1", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR", "ARGB", ""],
    "NumberOfFrames": ["0", "1", "2", "-1", "1000000"],
    "PlanarConfiguration": [0, 1, 7],
    "RescaleSlope": ["0", "-1", "1e39", "NaN", "inf", "1e-40"],
    "RescaleIntercept": ["NaN", "-inf", "1e38", "-32768"],
    "WindowWidth": ["0", "-1", "NaN", "1e39"],
    "WindowCenter": ["NaN", "inf", "1e39"],
}


def _header_field(rng: np.random.Generator, data: bytes) -> bytes:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for _ in range(int(rng.integers(1, 3))):
            keyword = str(rng.choice(list(_FIELDS)))
            values = _FIELDS[keyword]
            setattr(ds, keyword, values[int(rng.integers(0, len(values)))])
        buffer = io.BytesIO()
        ds.save_as(buffer)
        return buffer.getvalue()
    except Exception:  # the writer refused the value: flip bits instead
        return _flip_bits(rng, data)


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append((pos, kind))
        pos += 12 + length
    return chunks


def _png_ihdr(rng: np.random.Generator, data: bytes, size: tuple[int, int] | None = None) -> bytes:
    out = bytearray(data)
    if size is None:
        width = int(rng.choice([0, 1, 30000, 65535, 1 << 30, 0xFFFFFFFF]))
        height = int(rng.choice([0, 1, 30000, 65535, 1 << 30]))
    else:
        width, height = size
    out[16:24] = struct.pack(">II", width, height)
    if rng.random() < 0.3:
        out[24] = int(rng.choice([0, 3, 16, 255]))  # bit depth
        out[25] = int(rng.choice([1, 2, 5, 6, 7]))  # color type
    out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    return bytes(out)


def _png_chunk_length(rng: np.random.Generator, data: bytes) -> bytes:
    chunks = _png_chunks(data)
    idats = [c for c in chunks if c[1] == b"IDAT"]
    pos, _ = idats[0] if idats and rng.random() < 0.6 else chunks[int(rng.integers(0, len(chunks)))]
    out = bytearray(data)
    out[pos:pos + 4] = struct.pack(">I", int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(data)])))
    return bytes(out)


def _j2k_siz(rng: np.random.Generator, data: bytes) -> bytes:
    pos = data.find(b"\xff\x4f\xff\x51")
    if pos < 0:
        return _flip_bits(rng, data)
    out = bytearray(data)
    siz = pos + 4
    choice = int(rng.integers(0, 4))
    if choice == 0:  # image size bomb
        out[siz + 4:siz + 12] = struct.pack(">II", 60000, 60000)
        out[siz + 20:siz + 28] = struct.pack(">II", 60000, 60000)
    elif choice == 1:  # component count
        out[siz + 36:siz + 38] = struct.pack(">H", int(rng.choice([0, 3, 4, 16384])))
    elif choice == 2:  # tiny tiles
        out[siz + 20:siz + 28] = struct.pack(">II", 1, 1)
    else:  # any marker segment length in the main header
        for _ in range(8):
            i = data.find(b"\xff", siz + int(rng.integers(0, 200)))
            if 0 <= i < len(out) - 4 and data[i + 1] >= 0x50:
                out[i + 2:i + 4] = struct.pack(">H", int(rng.choice([0, 1, 2, 0xFFFF])))
                break
    return bytes(out)


def _dicom_size_bomb(rng: np.random.Generator, data: bytes) -> bytes:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        ds.Rows, ds.Columns = int(rng.choice([10000, 30000, 60000, 65535])), int(rng.choice([10000, 60000, 65535]))
        buffer = io.BytesIO()
        ds.save_as(buffer)
        return buffer.getvalue()
    except Exception:
        return _flip_bits(rng, data)


_DEFLATE_BOMB: bytes | None = None


def deflate_bomb() -> bytes:
    """A deflated DICOM of 30000x30000 16-bit zeros (1.8 GB inflated, about 1.7 MB on disk)."""
    global _DEFLATE_BOMB
    if _DEFLATE_BOMB is None:
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        ds.Modality, ds.Rows, ds.Columns = "CR", 30000, 30000
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        head = buffer.getvalue()
        body_start = head.index(b"\x08\x00\x60\x00")  # first dataset element (0008,0060) Modality
        dataset = head[body_start:]
        n = 30000 * 30000 * 2
        element = b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", n)
        deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        parts = [deflater.compress(dataset + element)]
        zeros = bytes(16 << 20)
        for _ in range(n // len(zeros)):
            parts.append(deflater.compress(zeros))
        parts.append(deflater.compress(bytes(n % len(zeros))))
        parts.append(deflater.flush())
        meta = io.BytesIO()
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        pydicom.filewriter.write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
        _DEFLATE_BOMB = b"\0" * 128 + b"DICM" + meta.getvalue() + b"".join(parts)
    return _DEFLATE_BOMB


def mutate(rng: np.random.Generator, name: str, data: bytes) -> tuple[str, bytes]:
    """One mutation of ``data``; returns its kind and the bytes."""
    is_dicom, is_png = name.endswith(".dcm"), name.endswith(".png")
    kinds = ["bitflip", "overwrite", "truncate"]
    if is_dicom:
        kinds += ["header-field", "header-field", "size-bomb"]
        if b"\xff\x4f\xff\x51" in data:
            kinds += ["j2k-siz", "j2k-siz"]
    if is_png:
        kinds += ["png-ihdr", "png-chunk-length", "png-chunk-length"]
    kind = str(rng.choice(kinds))
    if rng.random() < 0.004:
        return "deflate-bomb", deflate_bomb()
    mutator = {"bitflip": _flip_bits, "overwrite": _overwrite, "truncate": _truncate,
               "header-field": _header_field, "size-bomb": _dicom_size_bomb, "j2k-siz": _j2k_siz,
               "png-ihdr": _png_ihdr, "png-chunk-length": _png_chunk_length}[kind]
    return kind, mutator(rng, data)


def corpus_file(seed: int, index: int, seeds: dict[str, bytes]) -> tuple[str, str, bytes]:
    """File ``index`` of the corpus: (seed name, mutation kind, bytes); a pure function of its arguments."""
    rng = np.random.default_rng([seed, index])
    names = sorted(seeds)
    name = names[int(rng.integers(0, len(names)))]
    if index < len(names):  # every seed once unmutated, and the known killers
        return names[index], "none", seeds[names[index]]
    kind, data = mutate(rng, name, seeds[name])
    return name, kind, data


# ----------------------------------------------------------------------------------------- runner


@dataclass
class Outcome:
    index: int
    seed_name: str
    mutation: str
    outcome: str
    detail: str
    seconds: float
    max_rss_mib: float


def _child(path: Path, write_fd: int, memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    from core.errors import ImageLoadError
    from core.imaging import load_xray

    try:
        xray = load_xray(path)
        display = np.asarray(xray.display)
        result = ("loaded", "") if np.isfinite(display).all() else ("nonfinite", "display has NaN/inf")
    except ImageLoadError as exc:
        reason = exc.reason or ""
        if exc.source != str(path):
            result = ("internal-text", f"error names {exc.source!r}, not the file")
        elif _INTERNAL.search(reason):
            result = ("internal-text", reason)
        else:
            result = ("error", reason)
    except BaseException as exc:  # noqa: BLE001 - this is what the fuzzer looks for
        result = ("other-exception", f"{type(exc).__name__}: {exc}"[:300])
    os.write(write_fd, json.dumps(result).encode()[:60000])
    os._exit(0)


def run_one(path: Path, timeout_s: float, memory_bytes: int) -> tuple[str, str, float, float]:
    """(outcome, detail, seconds, max RSS MiB) of loading ``path`` in a forked child."""
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        try:
            _child(path, write_fd, memory_bytes)
        finally:
            os._exit(3)
    os.close(write_fd)
    chunks, deadline, status, usage = [], start + timeout_s, None, None
    while True:
        ready, _, _ = select.select([read_fd], [], [], max(0.0, min(0.2, deadline - time.perf_counter())))
        if ready:
            block = os.read(read_fd, 65536)
            if block:
                chunks.append(block)
                continue
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            os.close(read_fd)
            return "timeout", f"over {timeout_s:g} s", time.perf_counter() - start, usage.ru_maxrss / 1024
    while block := os.read(read_fd, 65536):
        chunks.append(block)
    os.close(read_fd)
    seconds = time.perf_counter() - start
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    if os.WIFSIGNALED(status):
        return "signal", signal.Signals(os.WTERMSIG(status)).name, seconds, rss
    try:
        outcome, detail = json.loads(b"".join(chunks) or b'["signal", "no result"]')
    except ValueError:
        outcome, detail = "other-exception", "unreadable result"
    return outcome, detail, seconds, rss


def run_corpus(count: int, seed: int = 12, real: list[Path] | None = None, timeout_s: float = 30.0,
               memory_bytes: int = 4 << 30, progress: bool = False) -> list[Outcome]:
    """Generate and load ``count`` corpus files; one Outcome each."""
    import core.imaging  # noqa: F401 - imported once here, shared by every forked child

    seeds = synthetic_seeds()
    for folder in real or []:
        seeds |= real_seeds(folder)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="r2c-fuzz-") as tmp:
        for i in range(count):
            name, kind, data = corpus_file(seed, i, seeds)
            path = Path(tmp) / f"{i:05d}{Path(name).suffix}"
            path.write_bytes(data)
            outcome, detail, seconds, rss = run_one(path, timeout_s, memory_bytes)
            outcomes.append(Outcome(i, name, kind, outcome, detail, round(seconds, 3), round(rss, 1)))
            path.unlink()
            if progress and (i + 1) % 500 == 0:
                print(f"  {i + 1} files", file=sys.stderr, flush=True)
    return outcomes


def summary(outcomes: list[Outcome]) -> dict:
    counts = collections.Counter(o.outcome for o in outcomes)
    return {
        "files": len(outcomes),
        "outcomes": dict(sorted(counts.items())),
        "by_mutation": {k: dict(collections.Counter(o.outcome for o in outcomes if o.mutation == k))
                        for k in sorted({o.mutation for o in outcomes})},
        "over_10s": sum(o.seconds > 10 for o in outcomes),
        "over_2GiB": sum(o.max_rss_mib > 2048 for o in outcomes),
        "max_seconds": max((o.seconds for o in outcomes), default=0.0),
        "max_rss_mib": max((o.max_rss_mib for o in outcomes), default=0.0),
        "total_seconds": round(sum(o.seconds for o in outcomes), 1),
        "defects": [asdict(o) for o in outcomes if o.outcome not in GOOD][:50],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fuzz the X-ray loader")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--real", type=Path, action="append", help="also mutate real files in this folder (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per file before it is killed")
    parser.add_argument("--memory-gib", type=float, default=4.0, help="address-space limit per file")
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    outcomes = run_corpus(args.count, args.seed, args.real, args.timeout, int(args.memory_gib * (1 << 30)),
                          args.progress)
    result = summary(outcomes)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "defects"}, indent=1))
    for defect in result["defects"][:10]:
        print("DEFECT", defect)
    return 0 if all(o.outcome in GOOD for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

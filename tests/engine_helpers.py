"""Helpers for engine tests: stand-in model files and synthetic X-ray-like images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from core.models import build_generator
from core.models.segmenter import build_segmenter
from core.variants import SEGMENTER_ID, VARIANTS
from core.weights.model_file import Manifest, save_model


def make_generator_file(folder: Path, variant_id: str = "r2c-q1", seed: int = 0) -> Path:
    """A real (randomly initialised) generator model file, as the app would install it."""
    v = VARIANTS[variant_id]
    torch.manual_seed(seed)
    model = build_generator(v.architecture, v.q)
    path = folder / f"{variant_id}.safetensors"
    save_model(path, model.state_dict(), Manifest(variant_id=v.id, display_name=v.display_name, kind="generator",
                                                  architecture=v.architecture, q=v.q,
                                                  default_iterations=v.default_iterations))
    return path


def make_segmenter_file(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    path = folder / f"{SEGMENTER_ID}.safetensors"
    save_model(path, build_segmenter().state_dict(),
               Manifest(variant_id=SEGMENTER_ID, display_name="Lung U-Net", kind="segmenter",
                        architecture="unet-densenet121", input_size=256))
    return path


def chest_like(h: int = 300, w: int = 260, seed: int = 0) -> np.ndarray:
    """A smooth bright body with two dark lung fields and a bright mediastinum, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.15 + 0.55 * (((xx - w / 2) / (0.48 * w)) ** 2 + ((yy - h / 2) / (0.6 * h)) ** 2 < 1)
    for cx in (0.3 * w, 0.7 * w):
        lung = ((xx - cx) / (0.15 * w)) ** 2 + ((yy - 0.45 * h) / (0.3 * h)) ** 2 < 1
        img[lung] -= 0.35
    img[:, int(0.46 * w) : int(0.54 * w)] += 0.2
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


_LIMIT_WRITES = """
import resource, signal

def limit_writes(nbytes: int = 64 * 1024) -> None:
    # From here on the OS refuses to grow a file past nbytes (EFBIG), as a full disk refuses (ENOSPC).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))
"""


def run_where_writes_fail(code: str, *args: str) -> list[str]:
    """Run ``code`` in a child Python that may call ``limit_writes()``; the limit cannot touch the
    test run. Returns the child's stdout lines; a child that fails fails the test with its stderr."""
    proc = subprocess.run([sys.executable, "-c", _LIMIT_WRITES + code, *args], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()

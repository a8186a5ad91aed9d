"""The fuzz suite that stays: a fixed-seed corpus of mutated files, each loaded in a capped child.

Outcomes allowed: loaded (finite pixels) or the project's ImageLoadError with a plain reason;
a native abort, another exception, a NaN image, a leak of internal text, more than 10 s or
more than 2 GiB fails. The 10,000-file run is ``benchmarks/fuzz_loader.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fuzz runner forks (Linux)")


def _fuzz(tmp_path: Path, count: int, *extra: str) -> dict:
    out = tmp_path / "fuzz.json"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    done = subprocess.run([sys.executable, "-m", "tests.fuzz_harness", "--count", str(count), "--timeout", "20",
                           "--memory-gib", "4", "--json", str(out), *extra],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=900)
    assert out.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


def _assert_clean(result: dict, count: int) -> None:
    assert result["files"] == count
    assert set(result["outcomes"]) <= {"loaded", "error"}, result["defects"][:5]
    assert result["over_10s"] == 0 and result["over_2GiB"] == 0, (result["max_seconds"], result["max_rss_mib"])
    assert result["outcomes"].get("error", 0) > count // 3 and result["outcomes"].get("loaded", 0) > 10


def test_fuzz_synthetic_corpus(tmp_path):
    result = _fuzz(tmp_path, 300, "--seed", "12")
    _assert_clean(result, 300)
    # the corpus really holds the dangerous kinds (size bombs, chunk lengths, the GDCM abort seed)
    for kind in ("size-bomb", "png-chunk-length", "png-ihdr", "j2k-siz", "header-field", "truncate", "bitflip"):
        assert kind in result["by_mutation"], kind


def test_fuzz_real_dicom_corpus(tmp_path, dicom_dir):
    result = _fuzz(tmp_path, 150, "--seed", "7", "--real", str(dicom_dir))
    _assert_clean(result, 150)

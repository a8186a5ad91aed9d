"""Fuzz the X-ray loader with 10,000 mutated files and print the count per outcome.

Same corpus and runner as tests/test_fuzz_loader.py (tests/fuzz_harness.py): each file is
loaded in a forked child with an address-space limit and a time limit. The goal: 0 aborts,
0 other exceptions, 0 NaN images, 0 runs over 10 s, 0 over 2 GiB; only ``loaded`` and
``error`` (the project's ImageLoadError).

    .venv/bin/python benchmarks/fuzz_loader.py [--count 10000] [--real ../shared/data/dicom ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fuzz_harness import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--count" not in argv:
        argv = ["--count", "10000", *argv]
    if "--real" not in argv:
        shared = Path(__file__).resolve().parents[2] / "shared" / "data"
        for folder in ("dicom", "cxr_labeled"):
            if (shared / folder).is_dir():
                argv += ["--real", str(shared / folder)]
    sys.exit(main([*argv, "--progress"]))

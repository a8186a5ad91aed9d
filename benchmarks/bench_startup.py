"""Time from process start to the main window painted (``r2c-review gui``, offscreen unless a
display is asked for), and which heavy modules were loaded by then (the answer should be none).

Starts the app several times in fresh processes and prints each time and the median. Pin it like
the app would run: ``taskset -c 1 .venv/bin/python benchmarks/bench_startup.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_start(settings: Path, offscreen: bool) -> tuple[float, str]:
    env = dict(os.environ, R2C_STARTUP_REPORT="1", R2C_SETTINGS_DIR=str(settings))
    if offscreen:
        env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run([sys.executable, "-m", "app.cli", "gui"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("startup:")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"the app did not start (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    found = re.search(r"([\d.]+) s after process start", line)
    return (float(found.group(1)) if found else float("nan")), line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--display", action="store_true", help="use the real display instead of offscreen")
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory(prefix="r2c-bench-startup-") as tmp:
        for i in range(args.runs):
            seconds, line = one_start(Path(tmp), not args.display)
            times.append(seconds)
            print(f"run {i + 1}: {line}")
    print(f"window painted after process start: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} starts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

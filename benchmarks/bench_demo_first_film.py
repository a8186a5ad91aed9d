"""Time from ``r2c-review demo`` to the first real film on the reader's screen (fresh database).

Runs the GUI flow in-process (offscreen unless a display is asked for): window, demo build of
the first reader's first cases, welcome dialog, "Start reading", first case shown; then waits
for the background rendering of the rest. Installed generator weights (resources/models) are
used, as a user gets them. Pin it like the app would run: ``taskset -c 1``.

    taskset -c 1 .venv/bin/python benchmarks/bench_demo_first_film.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

T0 = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="work folder to keep (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="r2c-bench-demo-"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["R2C_SETTINGS_DIR"] = str(work / "settings")

    from PySide6.QtCore import QEventLoop, QTimer

    from app.demo import DemoController
    from app.main import create_app
    from app.main_window import MainWindow

    app = create_app()
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks.setdefault(name, round(time.perf_counter() - T0, 2))
        print(f"{marks[name]:8.2f} s  {name}", file=sys.stderr, flush=True)

    def wait(cond, timeout: float) -> bool:
        end = time.perf_counter() + timeout
        while not cond():
            if time.perf_counter() > end:
                return False
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
        return True

    window = MainWindow(f"sqlite:///{work / 'studies.db'}")
    window.show()
    mark("window shown")
    demo = DemoController(window, f"sqlite:///{work / 'studies.db'}")
    ok = wait(lambda: demo.welcome is not None and demo.welcome.isVisible(), args.timeout)
    mark("first cases rendered, welcome shown" if ok else "TIMEOUT waiting for the welcome dialog")
    if ok:
        demo.welcome.reader_button.click()
        page = window.page("reader")
        ok = wait(lambda: page.view.showing_case(), args.timeout)
        mark("first film on the reader's screen" if ok else "TIMEOUT waiting for the first case")
        ok = wait(lambda: demo.rest is not None and demo.rest.finished.is_set(), args.timeout)
        mark("all demo films rendered (background)" if ok else "TIMEOUT waiting for the background rendering")
    QTimer.singleShot(0, window.close)
    app.processEvents()
    from app import workers

    workers.cancel_all()
    workers.wait_idle(60_000)
    window.service.close()
    print(json.dumps({"cpus": len(os.sched_getaffinity(0)), "marks_s": marks, "work": str(work)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

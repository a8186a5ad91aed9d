"""Starting the desktop app: ``r2c-review gui`` and ``r2c-review demo``.

Start-up imports only Qt and the viewer; torch, the image decoders and the study engine
load later in workers. ``R2C_STARTUP_REPORT=1`` prints how long the window took to
appear (from process start and from ``run_gui``) and quits, for measuring it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_T_IMPORT = time.perf_counter()


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), or None where unknown."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start)
    except (OSError, ValueError, IndexError):
        return None


def create_app(argv: Sequence[str] | None = None):  # -> QApplication
    """The QApplication (reused if one exists, as under pytest-qt)."""
    from PySide6.QtWidgets import QApplication

    from app.qt_util import APP_NAME

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    return app


class _FirstPaint:
    """Reports the first paint of the window (the moment the user sees it)."""

    def __init__(self, window, t0: float, quit_after: bool) -> None:
        from PySide6.QtCore import QEvent, QObject

        self.t0, self.quit_after, self.done = t0, quit_after, False
        self.shown_after: float | None = None
        parent = self

        class Filter(QObject):
            def eventFilter(self, obj, event) -> bool:  # noqa: N802
                if event.type() == QEvent.Type.Paint and not parent.done:
                    parent.done = True
                    parent._report()
                return False

        self.filter = Filter(window)
        window.installEventFilter(self.filter)

    def _report(self) -> None:
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication

        self.shown_after = time.perf_counter() - self.t0
        age = process_age()
        heavy = [m for m in ("torch", "core.study", "segmentation_models_pytorch", "pydicom") if m in sys.modules]
        print(f"startup: window painted {self.shown_after:.3f} s after run_gui, "
              f"{age:.3f} s after process start; heavy modules loaded: {', '.join(heavy) or 'none'}"
              if age is not None else f"startup: window painted {self.shown_after:.3f} s after run_gui",
              file=sys.stderr, flush=True)
        if self.quit_after:
            QTimer.singleShot(0, QApplication.quit)


def _maybe_report(window, t0: float) -> None:
    if os.environ.get("R2C_STARTUP_REPORT", "") not in ("", "0"):
        window._first_paint = _FirstPaint(window, t0, quit_after=True)


def _exec(app, window) -> int:
    from app import workers

    rc = app.exec()
    workers.cancel_all()
    workers.wait_idle(30_000)  # votes in flight are committed before the process ends
    window.service.close()
    return int(rc)


def _platform_ok() -> bool:
    """Print one line and refuse, rather than let Qt abort, when no window can open here."""
    from app.platform_check import platform_problem

    problem = platform_problem()
    if problem:
        print(f"r2c-review: {problem}", file=sys.stderr)
        return False
    return True


def run_gui(paths: Sequence[str] = (), database: str | None = None) -> int:
    """Open the main window (on ``paths`` if given); returns the exit code."""
    if not _platform_ok():
        return 2
    t0 = time.perf_counter()
    app = create_app()
    from PySide6.QtCore import QTimer

    from app.main_window import MainWindow

    window = MainWindow(database)
    _maybe_report(window, t0)
    window.show()
    if paths:
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            print(f"r2c-review: warning: not found: {', '.join(missing)}", file=sys.stderr)
        QTimer.singleShot(0, lambda: window.open_paths([p for p in paths if Path(p).exists()]))
    return _exec(app, window)


def run_demo(database: str | None = None, gui: bool = True) -> int:
    """Build the demo study (images the project draws itself) and open the app on it."""
    if not gui:
        from app.demo import build_demo_cli

        return build_demo_cli(database)
    if not _platform_ok():
        return 2
    t0 = time.perf_counter()
    app = create_app()
    from app.demo import DemoController
    from app.main_window import MainWindow

    window = MainWindow(database)
    _maybe_report(window, t0)
    window.show()
    window._demo = DemoController(window, database)  # type: ignore[attr-defined]
    return _exec(app, window)

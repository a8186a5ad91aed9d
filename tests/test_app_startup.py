"""The window appears without heavy imports: start-up loads neither torch nor the study engine.

How fast it appears is measured by ``benchmarks/bench_startup.py``, not asserted here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.gui


def test_window_appears_without_heavy_imports(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", R2C_STARTUP_REPORT="1", R2C_SETTINGS_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "app.cli", "gui"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("startup:"))
    print(line)
    assert line.endswith("heavy modules loaded: none"), line


def test_main_window_moves_cycle_collection_to_the_gui_thread(qtbot, tmp_path, monkeypatch) -> None:
    import gc

    from PySide6.QtCore import QCoreApplication, QObject

    from app.main_window import MainWindow

    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    win = MainWindow(database=f"sqlite:///{tmp_path / 's.db'}")
    qtbot.addWidget(win)
    assert not gc.isenabled()
    assert QCoreApplication.instance().findChild(QObject, "guiThreadCollector") is not None

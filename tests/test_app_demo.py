"""`r2c-review demo` in the window: a progress dialog from the start, reading before all films are
rendered, the rest in the background, and a cancel that stops it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QLabel, QPushButton  # noqa: E402

from tests.app_helpers import open_main_window, settle  # noqa: E402
from tests.study_helpers import make_env  # noqa: E402

pytestmark = pytest.mark.gui
FILMS = Path(__file__).resolve().parents[1] / "resources" / "demo"


@pytest.fixture
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Real films, no generator weights (candidates: original and the classic enhancements)."""
    env = make_env(tmp_path, monkeypatch)
    shutil.copytree(FILMS, tmp_path / "resources" / "demo")
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "resources")
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    from app import engine

    engine.reset()
    yield env
    engine.reset()


def _window(qtbot, database: str):
    return open_main_window(qtbot, database, size=None)


def _rendered(database: str, study: str) -> tuple[int, int]:
    from core.study import open_store, rendition_status

    with open_store(database) as store:
        return rendition_status(store, study)


def test_demo_reads_real_films_while_the_rest_render(qtbot, demo_env) -> None:
    from app.demo import DemoController

    database = f"sqlite:///{demo_env.tmp / 'studies.db'}"
    win = _window(qtbot, database)
    controller = DemoController(win, database)
    assert controller.dialog.isVisible()  # progress from the first moment, with a Cancel button
    qtbot.waitUntil(lambda: controller.welcome is not None and controller.welcome.isVisible(), timeout=120_000)
    assert controller.info.images == demo_env.tmp / "resources" / "demo"
    texts = " ".join(label.text() for label in controller.welcome.findChildren(QLabel))
    assert "Hannover Medical School" in texts and "ATTRIBUTION.txt" in texts  # CC BY: credit on screen
    qtbot.mouseClick(controller.welcome.reader_button, Qt.MouseButton.LeftButton)
    page = win.page("reader")
    qtbot.waitUntil(page.view.showing_case, timeout=60_000)
    assert page.view.progress.text().startswith("1 / ")
    qtbot.waitUntil(lambda: controller.rest is not None and controller.rest.finished.is_set(), timeout=120_000)
    settle(qtbot)
    done, total = _rendered(database, controller.info.study)
    assert done == total and not controller.dialog.isVisible()
    win.close()
    settle(qtbot)
    win.service.close()


def test_cancel_stops_the_background_rendering(qtbot, demo_env, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.demo import DemoController
    from core.study.render import Renderer

    gate = threading.Event()

    class Gated(Renderer):
        """Holds every chunk after the first (the first reader's first cases) until the test cancels."""

        calls = 0

        def render(self, cases, candidates=None, progress=None):  # noqa: ANN001, ANN201
            Gated.calls += 1
            if Gated.calls > 1:
                gate.wait(60)
            return super().render(cases, candidates, progress)

    monkeypatch.setattr("core.study.demo.Renderer", Gated)
    database = f"sqlite:///{demo_env.tmp / 'studies.db'}"
    win = _window(qtbot, database)
    controller = DemoController(win, database)
    qtbot.waitUntil(lambda: controller.welcome is not None, timeout=120_000)
    qtbot.waitUntil(lambda: Gated.calls >= 2, timeout=60_000)  # the background task is at its first chunk
    qtbot.mouseClick(controller.dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)  # its Cancel button
    assert not controller.dialog.isVisible() and controller.rest is not None and controller.rest.is_cancelled
    gate.set()
    settle(qtbot)
    done, total = _rendered(database, controller.info.study)
    assert 0 < done < total  # the first reader's first cases, not all of them
    win.close()
    settle(qtbot)
    win.service.close()

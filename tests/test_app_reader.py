"""Reader mode against a stand-in study service: voting by mouse and keyboard, prefetch, resume.

The end-to-end test with the real study engine is in test_app_study.py; this one pins the
page's own behaviour (what is shown when, which pane index is voted, where it resumes).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from app.reader.case_display import CaseDisplay  # noqa: E402
from app.study_service import ReaderSummary, ReadingHandle, StudySummary  # noqa: E402
from tests.app_helpers import click, open_main_window, settle, visible_texts  # noqa: E402

pytestmark = pytest.mark.gui
SECRET_NAMES = ["Original", "R2C-GAN (Q=1)", "R2C-GAN (CNN*)", "case_0001.png"]


class FakeHandle(ReadingHandle):
    def __init__(self, store: dict, cases: int = 4, panes: int = 3) -> None:
        self.store = store
        self.total = cases
        self.panes = panes
        self.delay = threading.Event()
        self.delay.set()

    def resume_position(self) -> int:
        answered = self.store.setdefault("votes", {})
        first_open = next((p for p in range(self.total) if p not in answered), self.total)
        return min(self.store.get("position", first_open), first_open)

    def remember_position(self, position: int) -> None:
        self.store["position"] = position

    def case(self, position: int) -> CaseDisplay:
        self.delay.wait(10)
        rng = np.random.default_rng(position)
        images = [rng.integers(0, 256, (64, 80), dtype=np.uint8) for _ in range(self.panes)]
        votes = self.store.setdefault("votes", {})
        return CaseDisplay(images, position + 1, self.total, "COVID-19" if position % 2 else "control",
                           previous_choice=votes.get(position), can_next=position in votes)

    def vote(self, position: int, pane: int, elapsed_ms: int, confidence: int | None = None) -> None:
        self.store.setdefault("votes", {})[position] = pane
        self.store.setdefault("log", []).append((position, pane, elapsed_ms))
        self.store.setdefault("confidence", {})[position] = confidence


class FakeService:
    def __init__(self) -> None:
        self.store: dict = {}
        self.handle: FakeHandle | None = None

    def list_studies(self) -> list[StudySummary]:
        votes = len(self.store.get("votes", {}))
        return [StudySummary("s1", "Pilot study", "restoration", 4, SECRET_NAMES[:3],
                             [ReaderSummary("r1", "MD I", 4, votes), ReaderSummary("r2", "MD II", 4, 0)], True,
                             (12, 12))]

    def open_reading(self, study_id: object, reader_id: object) -> FakeHandle:
        self.handle = FakeHandle(self.store)
        return self.handle


@pytest.fixture
def service() -> FakeService:
    return FakeService()


def _window(qtbot, tmp_path: Path, service: FakeService):
    return open_main_window(qtbot, str(tmp_path / "db.sqlite"), service, size=(1200, 700))


def test_vote_by_click_and_keys_prefetch_and_resume(qtbot, tmp_path: Path, service: FakeService,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    win = _window(qtbot, tmp_path, service)
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=10_000)
    settle(qtbot)
    view = page.view
    assert view.progress.text() == "1 / 4"
    assert view.disease.text() == "Disease label: control"
    assert [p.caption() for p in view.panes()] == ["1", "2", "3"]
    assert not view.confirm_button.isEnabled()

    click(view.panes()[1])
    assert view.choice() == 1 and view.panes()[1].is_selected()
    qtbot.mouseClick(view.confirm_button, Qt.MouseButton.LeftButton)
    # The next case was prefetched: it is on screen at once, before any worker runs.
    assert view.showing_case() and view.progress.text() == "2 / 4"
    settle(qtbot)
    assert service.store["votes"] == {0: 1}

    qtbot.keyClick(view, Qt.Key.Key_3)
    assert view.choice() == 2
    qtbot.keyClick(view, Qt.Key.Key_Return)
    settle(qtbot)
    assert service.store["votes"] == {0: 1, 1: 2}
    assert view.progress.text() == "3 / 4"

    # Back to case 2: the earlier answer is shown; changing it is a new vote for that case.
    qtbot.keyClick(view, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: view.progress.text() == "2 / 4" and view.showing_case(), timeout=5000)
    assert view.choice() == 2
    qtbot.keyClick(view, Qt.Key.Key_1)
    qtbot.keyClick(view, Qt.Key.Key_Enter)
    settle(qtbot)
    assert service.store["votes"][1] == 0 and len(service.store["log"]) == 3
    assert view.progress.text() == "3 / 4"
    win.close()
    settle(qtbot)

    # Reopen: the reader is put back on case 3, where they left off.
    win2 = _window(qtbot, tmp_path, service)
    win2.open_reader("s1", "r1")
    page2 = win2.page("reader")
    qtbot.waitUntil(lambda: page2.view.showing_case(), timeout=10_000)
    assert page2.view.progress.text() == "3 / 4"
    for key in (Qt.Key.Key_2, Qt.Key.Key_Return, Qt.Key.Key_3, Qt.Key.Key_Return):
        qtbot.keyClick(page2.view, key)
        settle(qtbot, 10)
    assert service.store["votes"] == {0: 1, 1: 0, 2: 1, 3: 2}
    assert not page2.view.showing_case() and "All 4 cases answered" in page2.view.blank.text()
    win2.close()
    settle(qtbot)


def test_slow_case_shows_all_panes_at_once(qtbot, tmp_path: Path, service: FakeService,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    win = _window(qtbot, tmp_path, service)
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=10_000)
    settle(qtbot)
    service.handle.delay.clear()  # the next-but-one case is slow to prepare
    page._cases.clear()
    qtbot.keyClick(page.view, Qt.Key.Key_1)
    qtbot.keyClick(page.view, Qt.Key.Key_Return)
    # Nothing of the next case is shown until all of its panes are ready.
    assert not page.view.showing_case()
    service.handle.delay.set()
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=10_000)
    assert page.view.progress.text() == "2 / 4"
    texts = " ".join(t for _, t in visible_texts(page))
    assert not any(name in texts for name in SECRET_NAMES)
    win.close()
    settle(qtbot)


def test_blank_screen_between_cases(qtbot, tmp_path: Path, service: FakeService,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    win = _window(qtbot, tmp_path, service)
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=10_000)
    settle(qtbot)
    page.blank_check.setChecked(True)
    qtbot.keyClick(page.view, Qt.Key.Key_2)
    qtbot.keyClick(page.view, Qt.Key.Key_Return)
    assert not page.view.showing_case()  # a neutral blank first
    qtbot.keyClick(page.view, Qt.Key.Key_1)  # keys during the blank choose nothing
    assert page.view.choice() is None
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=5000)
    assert page.view.progress.text() == "2 / 4" and page.view.choice() is None
    win.close()
    settle(qtbot)


class RatedHandle(FakeHandle):
    """A study that asks for a confidence rating with every vote."""

    asks_confidence = True

    def case(self, position: int) -> CaseDisplay:
        case = super().case(position)
        return replace(case, ask_confidence=True,
                       previous_confidence=self.store.get("confidence", {}).get(position))


def test_confidence_must_be_rated_before_confirming(qtbot, tmp_path: Path, service: FakeService,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setattr(service, "open_reading", lambda *_a: RatedHandle(service.store))
    win = _window(qtbot, tmp_path, service)
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=10_000)
    settle(qtbot)
    view = page.view
    assert view.confidence_box.isVisible() and view.confidence() is None  # no default: suggests nothing
    assert not any(b.isChecked() for b in view.confidence_buttons)
    ctrl = Qt.KeyboardModifier.ControlModifier

    # The scale is one control for the case: choosing another pane changes nothing in it.
    def scale_texts() -> list[str]:
        widgets = view.confidence_box.findChildren(QWidget)
        return [f"{w.text() if hasattr(w, 'text') else ''}|{w.toolTip()}|{w.accessibleName()}|{w.isEnabled()}"
                for w in widgets]

    texts = []
    for key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3):
        qtbot.keyClick(view, key)
        texts.append(scale_texts())
        assert view.confidence() is None
    assert texts[0] == texts[1] == texts[2]
    assert not any(name.lower() in " ".join(texts[0]).lower() for name in SECRET_NAMES)
    assert not view.confirm_button.isEnabled() and "rate your confidence" in view.choice_label.text()
    qtbot.keyClick(view, Qt.Key.Key_Return)  # not yet: nothing is saved
    settle(qtbot)
    assert not service.store.get("votes") and view.progress.text() == "1 / 4"

    qtbot.keyClick(view, Qt.Key.Key_4, ctrl)  # Ctrl+4 rates; the chosen pane stays pane 3
    assert view.confidence() == 4 and view.choice() == 2 and view.confirm_button.isEnabled()
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.confidence() == 3 and view.confidence_buttons[2].isChecked()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    settle(qtbot)
    assert service.store["votes"] == {0: 2} and service.store["confidence"] == {0: 3}

    # The next case starts empty again; mouse works too; Up from empty starts at the bottom of the scale.
    qtbot.waitUntil(lambda: view.showing_case() and view.progress.text() == "2 / 4", timeout=5000)
    assert view.confidence() is None and not any(b.isChecked() for b in view.confidence_buttons)
    click(view.panes()[0])
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.confidence() == 1
    qtbot.mouseClick(view.confidence_buttons[4], Qt.MouseButton.LeftButton)
    assert view.confidence() == 5
    qtbot.mouseClick(view.confirm_button, Qt.MouseButton.LeftButton)
    settle(qtbot)
    assert service.store["confidence"] == {0: 3, 1: 5}

    # Revisiting shows the rating given; amending can change it.
    qtbot.keyClick(view, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: view.showing_case() and view.progress.text() == "2 / 4", timeout=5000)
    assert (view.choice(), view.confidence()) == (0, 5)
    qtbot.keyClick(view, Qt.Key.Key_2, ctrl)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    settle(qtbot)
    assert service.store["confidence"][1] == 2 and service.store["votes"][1] == 0
    win.close()
    settle(qtbot)


def test_reader_mode_is_locked_until_the_session_is_ended(qtbot, tmp_path: Path, service: FakeService,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from app import reader

    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    win = _window(qtbot, tmp_path, service)
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    win.activateWindow()
    qtbot.waitActive(win)
    win.set_mode("reader")
    settle(qtbot)
    qtbot.keyClick(win, Qt.Key.Key_V, shift_ctrl)  # the shortcuts work while no session is open
    assert win.mode() == "viewer"
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=10_000)
    settle(qtbot)
    assert win.reading_locked() and win.end_session_action.isEnabled()
    assert not win.mode_actions["viewer"].isEnabled() and not win.mode_actions["admin"].isEnabled()
    assert not any(a.isEnabled() for a in win.open_actions)
    for key in (Qt.Key.Key_V, Qt.Key.Key_A):
        qtbot.keyClick(win, key, shift_ctrl)
    win.set_mode("admin")
    win.set_mode("viewer")
    assert win.open_paths([tmp_path]) is None
    assert win.mode() == "reader" and page.in_session() and "admin" not in win._pages

    answers = iter([False, True])
    monkeypatch.setattr(reader.page, "confirm", lambda *_a: next(answers))
    qtbot.mouseClick(page.end_button, Qt.MouseButton.LeftButton)  # "No": still reading, still locked
    assert page.in_session() and page.view.showing_case() and win.reading_locked()
    win.end_session_action.trigger()  # "Yes"
    settle(qtbot)
    assert not page.in_session() and not win.reading_locked() and page.stack.currentWidget() is page.chooser
    assert win.mode_actions["viewer"].isEnabled() and win.mode_actions["admin"].isEnabled()
    assert all(a.isEnabled() for a in win.open_actions) and not win.end_session_action.isEnabled()
    qtbot.keyClick(win, Qt.Key.Key_V, shift_ctrl)
    assert win.mode() == "viewer"
    win.close()
    settle(qtbot)

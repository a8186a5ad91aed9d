"""Session safety: quitting mid-session asks first, and a restart returns to the reader picker.

Also the small things around a session: the end screen shows no disease label, and the
window title names the app once.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QCloseEvent, QKeySequence  # noqa: E402

from app.qt_util import APP_NAME  # noqa: E402
from tests.app_helpers import settle, visible_texts  # noqa: E402
from tests.test_app_reader import FakeService, _window  # noqa: E402

pytestmark = pytest.mark.gui


class _CloseButton(QCloseEvent):
    """What the window manager's close button sends: a spontaneous close event."""

    def spontaneous(self) -> bool:  # noqa: D102
        return True


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeService:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    return FakeService()


def _reading(qtbot, tmp_path: Path, service: FakeService):
    win = _window(qtbot, tmp_path, service)
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(page.view.showing_case, timeout=10_000)
    settle(qtbot)
    return win, page


def _answers(monkeypatch: pytest.MonkeyPatch, *answers: bool) -> list[str]:
    asked: list[str] = []
    replies = iter(answers)

    def confirm(_parent, title: str, _question: str) -> bool:
        asked.append(title)
        return next(replies)

    monkeypatch.setattr("app.main_window.confirm", confirm)
    return asked


def test_ctrl_q_during_a_session_asks_first(qtbot, tmp_path: Path, service: FakeService,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    win, page = _reading(qtbot, tmp_path, service)
    asked = _answers(monkeypatch, False, True)
    assert win.quit_action.shortcut() == QKeySequence("Ctrl+Q")
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)  # "No": still reading
    assert asked == ["Quit during a reading session"]
    assert win.isVisible() and page.in_session() and page.view.showing_case()
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)  # "Yes"
    assert len(asked) == 2 and not win.isVisible()
    settle(qtbot)


def test_close_button_during_a_session_asks_first(qtbot, tmp_path: Path, service: FakeService,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    win, page = _reading(qtbot, tmp_path, service)
    asked = _answers(monkeypatch, False)
    event = _CloseButton()
    win.closeEvent(event)
    assert asked and not event.isAccepted() and page.in_session() and win.isVisible()
    win.close()  # a programmatic close (the app's own shutdown) does not ask
    assert len(asked) == 1 and not win.isVisible()
    settle(qtbot)


def test_quitting_outside_a_session_does_not_ask(qtbot, tmp_path: Path, service: FakeService,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    win = _window(qtbot, tmp_path, service)
    asked = _answers(monkeypatch)  # any question would fail: no replies
    event = _CloseButton()
    win.closeEvent(event)
    assert event.isAccepted() and not asked
    assert win.request_quit() and not win.isVisible() and not asked
    settle(qtbot)


def test_restart_after_quitting_mid_session_opens_the_reader_picker(qtbot, tmp_path: Path, service: FakeService,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    win, page = _reading(qtbot, tmp_path, service)
    qtbot.keyClick(page.view, Qt.Key.Key_2)
    qtbot.keyClick(page.view, Qt.Key.Key_Return)
    settle(qtbot)
    _answers(monkeypatch, True)
    assert win.request_quit()
    settle(qtbot)

    win2 = _window(qtbot, tmp_path, service)  # the next start
    page2 = win2.page("reader")
    assert win2.mode() == "reader" and not page2.in_session()
    qtbot.waitUntil(lambda: page2.start_button.isEnabled(), timeout=10_000)
    assert page2.stack.currentWidget() is page2.chooser
    assert page2.study_combo.currentText() == "Pilot study" and page2.reader_combo.currentData() == "r1"
    qtbot.mouseClick(page2.start_button, Qt.MouseButton.LeftButton)  # continue where the reader left off
    qtbot.waitUntil(page2.view.showing_case, timeout=10_000)
    assert page2.view.progress.text() == "2 / 4"

    monkeypatch.setattr("app.reader.page.confirm", lambda *_a: True)
    assert page2.request_end()  # a session ended properly: the next start is the usual one
    settle(qtbot)
    win2.close()
    settle(qtbot)
    win3 = _window(qtbot, tmp_path, service)
    assert win3.mode() == "viewer"
    win3.close()
    settle(qtbot)


def test_end_screen_shows_no_disease_label(qtbot, tmp_path: Path, service: FakeService) -> None:
    win, page = _reading(qtbot, tmp_path, service)
    view = page.view
    for _ in range(4):
        qtbot.keyClick(view, Qt.Key.Key_1)
        qtbot.keyClick(view, Qt.Key.Key_Return)
        settle(qtbot, 10)
    assert not view.showing_case() and "All 4 cases answered" in view.blank.text()
    assert not view.disease.isVisible() and view.disease.text() == ""
    texts = [text for _where, text in visible_texts(win)]
    assert not any("Disease label" in t or "COVID-19" in t or t == "control" for t in texts)
    qtbot.mouseClick(view.prev_button, Qt.MouseButton.LeftButton)  # back to the last case: its label returns
    qtbot.waitUntil(lambda: view.showing_case() and view.progress.text() == "4 / 4", timeout=10_000)
    assert view.disease.isVisible() and view.disease.text() == "Disease label: COVID-19"
    win.close()
    settle(qtbot)


def test_window_title_names_the_app_once(qtbot, tmp_path: Path, service: FakeService) -> None:
    win = _window(qtbot, tmp_path, service)
    assert win.windowTitle() == f"Viewer — {APP_NAME}"
    win.open_reader()
    assert win.windowTitle() == f"Reader — {APP_NAME}"
    # Qt appends the application display name unless the title already ends with it.
    assert win.windowTitle().endswith(APP_NAME) and win.windowTitle().count(APP_NAME) == 1
    win.close()
    settle(qtbot)

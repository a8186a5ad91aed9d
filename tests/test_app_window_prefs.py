"""The viewer's housekeeping: the F1 shortcuts sheet (built from the live actions), removing and
clearing files in the list, and window geometry, viewer layout and passes remembered across restarts."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QAction, QKeySequence  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from tests.app_helpers import open_main_window, settle, write_test_png  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-resources")
    return tmp_path


def _window(qtbot, env: Path, service=None):
    return open_main_window(qtbot, str(env / "study.db"), service, size=None)


def _sheet(qtbot, win) -> dict[str, str]:
    for old in win.findChildren(QDialog, "shortcutsSheet"):
        old.reject()
        old.deleteLater()
    settle(qtbot, 10)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    qtbot.keyClick(win, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in win.findChildren(QDialog, "shortcutsSheet")), timeout=5000)
    sheet = next(d for d in win.findChildren(QDialog, "shortcutsSheet") if d.isVisible())
    return {what: keys for keys, what in sheet.rows()}


def _open(qtbot, win, paths: list[Path]) -> None:
    win.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: win.files.count() == len(paths), timeout=20_000)
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) >= 1, timeout=20_000)
    settle(qtbot)


def test_f1_lists_the_shortcuts_of_the_current_mode_from_the_live_actions(qtbot, env: Path) -> None:
    from tests.test_app_reader import FakeService

    win = _window(qtbot, env, FakeService())
    rows = _sheet(qtbot, win)
    assert rows["Fit — Fit the image to the pane"] == "F" and rows["Quit"] == "Ctrl+Q"
    assert rows["Keyboard shortcuts"] == "F1" and rows["Invert — Swap black and white"] == "I"
    assert rows["Window preset 2"] == "2"
    for action in win.viewer.actions():  # every live viewer shortcut is on the sheet
        if not action.shortcut().isEmpty():
            assert action.shortcut().toString(QKeySequence.SequenceFormat.NativeText) in rows.values(), action.text()
    late = QAction("Measure", win.viewer)  # added after start-up: it shows up, the sheet is not a fixed list
    late.setShortcut(QKeySequence("Ctrl+Alt+M"))
    win.viewer.addAction(late)
    assert _sheet(qtbot, win)["Measure"] == "Ctrl+Alt+M"

    win.set_mode("reader")  # another mode: the viewer's keys are gone, the reader's appear
    rows = _sheet(qtbot, win)
    assert "Fit — Fit the image to the pane" not in rows and "Measure" not in rows
    assert rows["Start reading (the default button)"] == "Enter" and rows["Quit"] == "Ctrl+Q"
    win.open_reader("s1", "r1")
    page = win.page("reader")
    qtbot.waitUntil(page.view.showing_case, timeout=10_000)
    rows = _sheet(qtbot, win)
    assert rows["Confirm the answer and go on"] == "Enter" and "Previous case" in rows
    assert rows["End reading session"] == "Ctrl+Shift+E"
    assert "Viewer" not in rows  # locked while reading: a disabled action is not offered
    win.close()


def test_files_can_be_removed_from_the_list_and_cleared(qtbot, env: Path) -> None:
    win = _window(qtbot, env)
    films = [write_test_png(env / f"f{i}.png", seed=i) for i in range(3)]
    _open(qtbot, win, films)
    files = win.files
    files.clearSelection()
    files.item(0).setSelected(True)
    files.item(2).setSelected(True)
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) == 2, timeout=20_000)
    files.setFocus()
    qtbot.keyClick(files, Qt.Key.Key_Delete)
    assert [p.name for p in files.paths()] == ["f1.png"]
    qtbot.waitUntil(lambda: win.viewer.xrays() == [], timeout=10_000)  # nothing selected: nothing shown
    assert win.viewer.stack.currentWidget() is win.viewer.hint
    assert files.remove_action in files.actions() and files.clear_action in files.actions()  # context menu
    files.item(0).setSelected(True)
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) == 1, timeout=20_000)
    file_menu = win.menuBar().actions()[0].menu()
    assert files.clear_action in file_menu.actions() and files.remove_action in file_menu.actions()
    files.clear_action.trigger()
    assert files.count() == 0 and files.paths() == []
    qtbot.waitUntil(lambda: win.viewer.xrays() == [], timeout=10_000)
    _open(qtbot, win, films[:1])  # a cleared file can be opened again
    assert files.count() == 1
    win.close()


def test_geometry_layout_and_passes_survive_a_restart(qtbot, env: Path) -> None:
    win = _window(qtbot, env)
    screen = win.screen().availableGeometry()
    win.resize(min(1111, screen.width() - 73), min(677, screen.height() - 41))  # restoring keeps it on screen
    settle(qtbot)
    size = (win.width(), win.height())  # as the window allows (its minimum size may be larger)
    win.viewer.splitter.setSizes([600, 420])
    settle(qtbot)
    sizes = win.viewer.splitter.sizes()
    win.viewer.link_window_action.setChecked(False)
    win.viewer.compare.iterations.setValue(2)
    win.close()  # saves
    settle(qtbot)

    again = _window(qtbot, env)
    settle(qtbot)
    assert (again.width(), again.height()) == size != (1400, 860)
    assert again.viewer.splitter.sizes() == sizes and sizes != [900, 300]
    assert not again.viewer.link_window_action.isChecked() and again.viewer.link_geometry_action.isChecked()
    assert again.viewer.compare.iterations.value() == 2
    again.close()

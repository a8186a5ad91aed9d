"""The keyboard shortcuts sheet (F1): every shortcut of the current mode, read from the live
``QAction``/``QShortcut`` objects (and the keys a page handles itself, from its ``key_help``),
so the sheet cannot drift from what the keys do.

"The current mode" is what is reachable now: the window's menus and mode bar, and actions
owned by a widget on screen (the page shown, the file list in the viewer); disabled actions
(e.g. the viewer while a reading session locks it) are left out.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def _reachable(owner: object, window: QMainWindow) -> bool:
    if owner is window or isinstance(owner, QMenu):
        return True
    return isinstance(owner, QWidget) and owner.isVisible()


def _name(action: QAction) -> str:
    text = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()
    tip = action.toolTip().split(" (")[0].strip()
    return f"{text} — {tip}" if tip and tip.lower() != text.lower() else text


def _keys(sequences: list[QKeySequence]) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in sequences if not s.isEmpty())


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
    """(keys, what they do) for the current mode, window-wide ones first; see the module docstring."""
    rows: list[tuple[str, str]] = []
    for action in window.findChildren(QAction):
        keys = _keys(action.shortcuts())
        if keys and action.isEnabled() and _reachable(action.parent(), window):
            rows.append((keys, _name(action)))
    for shortcut in window.findChildren(QShortcut):
        keys = _keys(shortcut.keys())
        if keys and shortcut.isEnabled() and _reachable(shortcut.parent(), window):
            rows.append((keys, shortcut.whatsThis() or shortcut.objectName() or "(unnamed)"))
    page = window.centralWidget().currentWidget() if hasattr(window.centralWidget(), "currentWidget") else None
    page_keys = getattr(page, "key_help", None)
    if callable(page_keys):
        rows += list(page_keys())
    seen: set[tuple[str, str]] = set()
    return [r for r in rows if not (r in seen or seen.add(r))]


class ShortcutsSheet(QDialog):
    """A read-only table of :func:`shortcut_rows`."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setObjectName("shortcutsSheet")
        title = window.windowTitle().split(" — ")[0]
        self.setWindowTitle(f"Keyboard shortcuts — {title}")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Shortcuts in {title} mode:"))
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Does"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for i, (keys, what) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(keys))
            self.table.setItem(i, 1, QTableWidgetItem(what))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(620, 520)

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]

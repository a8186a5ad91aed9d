"""The list of opened X-rays with thumbnails; selecting files shows them in the viewer.

Folders are expanded and thumbnails made in workers, one file at a time so that the image
the user clicks is not starved by thumbnail work (it runs at a higher priority). Files leave
the list with Delete (the selected ones) or "Clear list", from the list's context menu or the
File menu; what the viewer shows follows the remaining selection.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QKeySequence, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from app import workers
from app.images import THUMB_SIZE, expand_paths, thumbnail

PATH_ROLE = Qt.ItemDataRole.UserRole


def _thumbnails(paths: list[Path], ctx: workers.TaskContext) -> None:
    from core.errors import ImageLoadError

    for i, p in enumerate(paths):
        ctx.check()
        try:
            ctx.publish((p, thumbnail(p)))
        except ImageLoadError as exc:
            ctx.publish((p, exc.one_line()))
        ctx.progress(i + 1, len(paths))


class FileList(QListWidget):
    """See the module docstring."""

    filesSelected = Signal(list)  # list[Path]
    status = Signal(str)
    problems = Signal(list)  # list[str] of one-line problems

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fileList")
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.itemSelectionChanged.connect(self._selection_changed)
        self._items: dict[str, QListWidgetItem] = {}
        self._placeholder = self._blank_icon()
        self._tasks: list[workers.Task] = []
        self.remove_action = QAction("&Remove selected files from the list", self)
        self.remove_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # Delete elsewhere stays theirs
        self.remove_action.triggered.connect(self.remove_selected)
        self.clear_action = QAction("&Clear the file list", self)
        self.clear_action.triggered.connect(self.clear_all)
        for action in (self.remove_action, self.clear_action):
            self.addAction(action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    @staticmethod
    def _blank_icon() -> QIcon:
        pix = QPixmap(THUMB_SIZE, THUMB_SIZE)
        pix.fill(Qt.GlobalColor.black)
        return QIcon(pix)

    def paths(self) -> list[Path]:
        return [Path(self.item(i).data(PATH_ROLE)) for i in range(self.count())]

    def add_paths(self, paths: list[str | Path], select: bool = True) -> workers.Task:
        """Expand folders and list the X-rays found (worker), then make their thumbnails."""
        raw = [Path(p) for p in paths]
        return workers.submit(lambda ctx: expand_paths(raw), owner=self, name="Opening files", priority=1,
                              done=lambda res: self._add_found(*res, select=select),
                              failed=lambda m: self.problems.emit([m]))

    def _add_found(self, files: list[Path], problems: list[str], select: bool) -> None:
        if problems:
            self.problems.emit(problems)
        new = []
        for p in files:
            key = str(p)
            if key in self._items:
                continue
            item = QListWidgetItem(self._placeholder, p.name)
            item.setData(PATH_ROLE, key)
            item.setToolTip(key)
            self.addItem(item)
            self._items[key] = item
            new.append(p)
        if files:
            self.status.emit(f"{len(files)} image(s) listed" if len(files) > 1 else f"Opened {files[0].name}")
        if select and files:
            first = self._items[str(files[0])]
            self.clearSelection()
            first.setSelected(True)
            self.setCurrentItem(first)
            self.scrollToItem(first)
        if new:
            self._tasks.append(workers.submit(lambda ctx: _thumbnails(new, ctx), owner=self, name="Thumbnails",
                                              partial=self._thumbnail_ready))

    def _thumbnail_ready(self, item: object) -> None:
        path, result = item  # type: ignore[misc]
        entry = self._items.get(str(path))
        if entry is None:
            return
        if isinstance(result, QImage):
            entry.setIcon(QIcon(QPixmap.fromImage(result)))
        else:
            entry.setIcon(self._broken_icon())
            entry.setToolTip(str(result))
            entry.setForeground(Qt.GlobalColor.darkRed)

    @staticmethod
    def _broken_icon() -> QIcon:
        pix = QPixmap(THUMB_SIZE, THUMB_SIZE)
        pix.fill(QColor(60, 20, 20))
        p = QPainter(pix)
        p.setPen(QPen(QColor(230, 80, 80), 6))
        m = THUMB_SIZE // 3
        p.drawLine(m, m, THUMB_SIZE - m, THUMB_SIZE - m)
        p.drawLine(THUMB_SIZE - m, m, m, THUMB_SIZE - m)
        p.end()
        return QIcon(pix)

    def _selection_changed(self) -> None:
        rows = sorted(self.row(i) for i in self.selectedItems())
        self.filesSelected.emit([Path(self.item(r).data(PATH_ROLE)) for r in rows])

    def remove_selected(self) -> int:
        """Take the selected files off the list (not off the disk); returns how many."""
        rows = sorted((self.row(i) for i in self.selectedItems()), reverse=True)
        if not rows:
            return 0
        self.blockSignals(True)  # one selection update at the end, not one per row
        for r in rows:
            item = self.takeItem(r)
            self._items.pop(str(item.data(PATH_ROLE)), None)
        self.blockSignals(False)
        self.status.emit(f"Removed {len(rows)} file(s) from the list")
        self._selection_changed()
        return len(rows)

    def clear_all(self) -> None:
        """Empty the list; thumbnails still being made for it are dropped."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.blockSignals(True)
        self.clear()
        self._items.clear()
        self.blockSignals(False)
        self.status.emit("File list cleared")
        self._selection_changed()

    def thumbnails_done(self) -> bool:
        return all(t.finished.is_set() for t in self._tasks)

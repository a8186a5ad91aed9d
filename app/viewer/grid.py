"""Panes side by side (in the arrangement that shows the images largest), every cell the same size.

Equal sizes matter beyond looks: in reader mode a pane one pixel wider than the others
would be a clue. The grid lays panes out itself (no stretch rounding) and leaves any
leftover pixels as an equal margin around the whole row.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QTimer, Signal
from PySide6.QtWidgets import QWidget

from app.viewer.pane import ImagePane

GAP = 4


class PaneGrid(QWidget):
    """Holds N panes in one row (or two rows from 4 panes on), equal cell sizes."""

    paneClicked = Signal(object)  # the ImagePane clicked without dragging

    def __init__(self, parent: QWidget | None = None, *, show_info: bool = True) -> None:
        super().__init__(parent)
        self._panes: list[ImagePane] = []
        self._show_info = show_info
        self._flicker_timer = QTimer(self)
        self._flicker_timer.timeout.connect(self._flicker_step)
        self._flicker_index = 0
        self._aspect = 1.0
        self.setMinimumSize(200, 200)

    def panes(self) -> list[ImagePane]:
        return list(self._panes)

    def set_count(self, count: int) -> list[ImagePane]:
        """Make exactly ``count`` panes (reusing existing ones) and return them."""
        while len(self._panes) > count:
            pane = self._panes.pop()
            pane.hide()
            pane.deleteLater()
        while len(self._panes) < count:
            pane = ImagePane(self, show_info=self._show_info)
            pane.clicked.connect(lambda p=pane: self.paneClicked.emit(p))
            pane.show()
            self._panes.append(pane)
        if self.is_flickering() and count < 2:
            self.set_flicker(False)
        self._relayout()
        return self.panes()

    def set_aspect(self, aspect: float) -> None:
        """Width / height of the images shown, so the arrangement can give them the most room."""
        if aspect > 0 and aspect != self._aspect:
            self._aspect = aspect
            self._relayout()

    def rows_cols(self, count: int) -> tuple[int, int]:
        """The arrangement in which an image of the grid's aspect ratio is shown largest."""
        count = max(count, 1)
        best, best_scale = (1, count), -1.0
        for rows in range(1, count + 1):
            cols = -(-count // rows)
            w = (self.width() - GAP * (cols - 1)) / cols
            h = (self.height() - GAP * (rows - 1)) / rows
            scale = min(w / self._aspect, h)
            if scale > best_scale * 1.02:  # prefer fewer rows unless clearly better
                best, best_scale = (rows, cols), scale
        return best

    def cell_rects(self, count: int) -> list[QRect]:
        rows, cols = self.rows_cols(count)
        w = max(1, (self.width() - GAP * (cols - 1)) // cols)
        h = max(1, (self.height() - GAP * (rows - 1)) // rows)
        x0 = (self.width() - (w * cols + GAP * (cols - 1))) // 2
        y0 = (self.height() - (h * rows + GAP * (rows - 1))) // 2
        return [QRect(x0 + (i % cols) * (w + GAP), y0 + (i // cols) * (h + GAP), w, h) for i in range(count)]

    def _relayout(self) -> None:
        if self.is_flickering():
            rect = self.cell_rects(1)[0]
            for i, pane in enumerate(self._panes):
                pane.setGeometry(rect)
                pane.setVisible(i == self._flicker_index)
            return
        for pane, rect in zip(self._panes, self.cell_rects(len(self._panes)), strict=True):
            pane.setGeometry(rect)
            pane.setVisible(True)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()

    # -- flicker: the first two panes alternate in one place -------------------------------

    def is_flickering(self) -> bool:
        return self._flicker_timer.isActive()

    def set_flicker(self, on: bool, interval_ms: int = 500) -> None:
        if on and len(self._panes) >= 2:
            self._flicker_index = 0
            self._flicker_timer.start(interval_ms)
        else:
            self._flicker_timer.stop()
        self._relayout()

    def flicker_index(self) -> int:
        return self._flicker_index

    def _flicker_step(self) -> None:
        self._flicker_index = 1 - self._flicker_index
        self._relayout()

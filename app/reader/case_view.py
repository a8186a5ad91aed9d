"""One query of the blinded study on screen: N unlabeled panes, the question, the vote.

Panes carry neutral labels only (1..N or A..E, as the study says): no window/level read-out, equal
sizes (see :class:`~app.viewer.grid.PaneGrid`), identical rendering. All panes of a case
are set in one go and painted in the same frame, so none appears before the others.
Vote: click a pane (or press its number, or its letter), then Enter or "Confirm".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.viewer.grid import PaneGrid
from app.viewer.link import LinkGroup
from app.viewer.pane import ImagePane
from app.viewer.state import PaneImage

QUESTION = "Which image would you prefer for diagnosis?"


@dataclass(frozen=True)
class CaseDisplay:
    """What the reader sees of one query (nothing that names a candidate)."""

    images: list[np.ndarray]  # in pane order; same size; display levels in [0, 1] or 8-bit
    position: int  # 1-based, in this reader's order
    total: int
    disease_label: str | None = None  # shown when the study says so
    previous_choice: int | None = None  # pane index the reader chose before (revisiting)
    can_next: bool = False  # moving forward is allowed (the case was answered already)
    question: str = QUESTION
    labels: list[str] | None = None  # neutral pane labels ("A", "B"... or "1", "2"...); default numbers

    def pane_labels(self) -> list[str]:
        return list(self.labels) if self.labels else [str(i + 1) for i in range(len(self.images))]


def _as_display(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    return arr.astype(np.float32)


class CaseView(QWidget):
    """See the module docstring."""

    confirmed = Signal(int, int)  # pane index, milliseconds from display to confirmation
    previousRequested = Signal()
    nextRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._case: CaseDisplay | None = None
        self._choice: int | None = None
        self._clock = QElapsedTimer()
        self.link = LinkGroup(self)
        self._blank_timer = QTimer(self)
        self._blank_timer.setSingleShot(True)
        self._pending: CaseDisplay | None = None
        self._blank_timer.timeout.connect(self._end_blank)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.question = QLabel(QUESTION)
        self.question.setObjectName("question")
        self.question.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.disease = QLabel()
        self.disease.setObjectName("diseaseLabel")
        self.disease.setStyleSheet("font-size: 15pt; padding: 2px 10px; border: 1px solid #888; border-radius: 4px;")
        top.addWidget(self.question, 1)
        top.addWidget(self.disease)
        layout.addLayout(top)

        self.grid = PaneGrid(show_info=False)
        self.grid.paneClicked.connect(self._pane_clicked)
        self.blank = QLabel()
        self.blank.setObjectName("blank")
        self.blank.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.blank.setStyleSheet("background: #202020; color: #a0a0a0; font-size: 14pt;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.blank)
        layout.addWidget(self.stack, 1)

        bottom = self.bottom = QHBoxLayout()
        self.prev_button = self._button("◀ Previous", self.previousRequested.emit)
        self.next_button = self._button("Next ▶", self.nextRequested.emit)
        self.progress = QLabel()
        self.progress.setObjectName("progress")
        self.progress.setStyleSheet("font-size: 13pt;")
        self.choice_label = QLabel()
        self.choice_label.setObjectName("choice")
        self.confirm_button = self._button("Confirm choice (Enter)", self.confirm)
        self.confirm_button.setEnabled(False)
        bottom.addStretch(1)
        bottom.addWidget(self.prev_button)
        bottom.addWidget(self.progress)
        bottom.addWidget(self.next_button)
        bottom.addStretch(1)
        bottom.addWidget(self.choice_label)
        bottom.addWidget(self.confirm_button)
        layout.addLayout(bottom)

    def _button(self, text: str, slot) -> QPushButton:
        b = QPushButton(text)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter and digits always reach the view, never a button
        b.clicked.connect(slot)
        return b

    # -- showing ---------------------------------------------------------------------------

    def case(self) -> CaseDisplay | None:
        return self._case

    def panes(self) -> list[ImagePane]:
        return self.grid.panes()

    def choice(self) -> int | None:
        return self._choice

    def show_case(self, case: CaseDisplay, blank_ms: int = 0) -> None:
        """Show a case, after a blank screen of ``blank_ms`` if asked."""
        if blank_ms > 0:
            self._pending = case
            self.show_message("")
            self._blank_timer.start(blank_ms)
            return
        self._pending = None
        self._blank_timer.stop()
        self._case = case
        images = [PaneImage.from_display(_as_display(im)) for im in case.images]
        self.link.clear()
        self.grid.set_aspect(images[0].width / images[0].height)
        panes = self.grid.set_count(len(images))
        for pane, image, label in zip(panes, images, case.pane_labels(), strict=True):
            pane.set_caption(label)
            pane.set_image(image, reset=True)
            self.link.add(pane)
        self.question.setText(case.question)
        self.disease.setText(f"Disease label: {case.disease_label}" if case.disease_label else "")
        self.disease.setVisible(bool(case.disease_label))
        self.progress.setText(f"{case.position} / {case.total}")
        self.prev_button.setEnabled(case.position > 1)
        self.next_button.setEnabled(case.can_next and case.position < case.total)
        self._set_choice(case.previous_choice)
        self.stack.setCurrentWidget(self.grid)
        self.setFocus()
        self._clock.start()

    def show_message(self, text: str) -> None:
        """A neutral screen (blank between cases, waiting, end of the study)."""
        self.blank.setText(text)
        self.stack.setCurrentWidget(self.blank)
        self._choice = None  # nothing is chosen while nothing is shown
        for pane in self.grid.panes():
            pane.set_selected(False)
        self.confirm_button.setEnabled(False)
        self.choice_label.setText("")

    def showing_case(self) -> bool:
        return self.stack.currentWidget() is self.grid and self._case is not None

    def _end_blank(self) -> None:
        if self._pending is not None:
            self.show_case(self._pending)

    # -- choosing --------------------------------------------------------------------------

    def _set_choice(self, index: int | None) -> None:
        count = len(self.grid.panes())
        self._choice = index if index is not None and 0 <= index < count else None
        for i, pane in enumerate(self.grid.panes()):
            pane.set_selected(i == self._choice)
        self.confirm_button.setEnabled(self._choice is not None)
        labels = self._case.pane_labels() if self._case else []
        keys = f"{labels[0]}–{labels[-1]}" if labels else ""
        self.choice_label.setText(f"Your choice: image {labels[self._choice]}" if self._choice is not None
                                  else f"Click an image or press {keys}")

    def select(self, index: int) -> None:
        if self.showing_case():
            self._set_choice(index)

    def _pane_clicked(self, pane: ImagePane) -> None:
        if pane in self.grid.panes():
            self.select(self.grid.panes().index(pane))
            self.setFocus()

    def confirm(self) -> None:
        if self.showing_case() and self._choice is not None:
            self.confirmed.emit(self._choice, int(self._clock.elapsed()))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        labels = [label.upper() for label in self._case.pane_labels()] if self._case else []
        if Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.select(key - Qt.Key.Key_1)
        elif event.text().upper() in labels and not event.modifiers() & ~Qt.KeyboardModifier.ShiftModifier:
            self.select(labels.index(event.text().upper()))
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.confirm()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_PageUp) and self.prev_button.isEnabled():
            self.previousRequested.emit()
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_PageDown) and self.next_button.isEnabled():
            self.nextRequested.emit()
        else:
            super().keyPressEvent(event)

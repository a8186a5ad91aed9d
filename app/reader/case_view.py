"""One query of the blinded study on screen: N unlabeled panes, the question, the vote.

Panes carry neutral labels only (1..N or A..E, as the study says): no window/level read-out, equal
sizes (see :class:`~app.viewer.grid.PaneGrid`), identical rendering. All panes of a case
are set in one go and painted in the same frame, so none appears before the others.
Vote: click a pane (or press its number, or its letter), then Enter or "Confirm".

When the study asks for it, a 1-5 confidence scale sits below the panes: one control for the
case (never per pane), starting empty every time so it suggests nothing, and confirming waits
until it is set. Keyboard: Ctrl+1 … Ctrl+5 set it (plain digits already choose panes), Up and
Down step it.

A diagnosis (MRMC ROC) study shows one image and the same 1-5 scale as a disease rating
("How likely is COVID-19?"); there is nothing to choose, so plain digits 1-5 set the rating
as well, and Enter confirms it.

A real-or-synthetic study shows one film and its answers ("Real", "Synthetic") as buttons below it:
click one, or press its initial (R, S) or its number (1, 2), then Enter; the confidence scale works
as for a choice.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.reader.case_display import QUESTION, CaseDisplay
from app.viewer.grid import PaneGrid
from app.viewer.link import LinkGroup
from app.viewer.pane import ImagePane
from app.viewer.state import PaneImage

CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)
CONFIDENCE_PROMPT = "How confident are you in this choice?  (Ctrl+1 – Ctrl+5)"
RATING_PROMPT = "How likely is COVID-19 in this image?  (keys 1 – 5)"


def _as_display(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    return arr.astype(np.float32)


class CaseView(QWidget):
    """See the module docstring."""

    confirmed = Signal(int, int, object)  # pane index, ms from display to confirmation, confidence or None
    previousRequested = Signal()
    nextRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._case: CaseDisplay | None = None
        self._choice: int | None = None
        self._confidence: int | None = None
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
        layout.addWidget(self._build_answers())
        layout.addWidget(self._build_confidence())
        layout.addLayout(bottom)

    def _build_confidence(self) -> QWidget:
        """The 1-5 scale: one row of equal buttons with neutral end labels, hidden unless the study asks."""
        box = self.confidence_box = QWidget()
        box.setObjectName("confidenceBox")
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        self.confidence_prompt = QLabel(CONFIDENCE_PROMPT)
        self.confidence_low = QLabel("1 = not at all")
        self.confidence_high = QLabel("5 = completely")
        row.addWidget(self.confidence_prompt)
        row.addWidget(self.confidence_low)
        self.confidence_group = QButtonGroup(self)
        self.confidence_group.setExclusive(True)
        self.confidence_buttons: list[QPushButton] = []
        for level in CONFIDENCE_LEVELS:
            b = QPushButton(str(level))
            b.setObjectName(f"confidence{level}")
            b.setAccessibleName(f"Confidence {level} of {CONFIDENCE_LEVELS[-1]}")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the view (see keyPressEvent)
            b.setFixedWidth(40)
            self.confidence_group.addButton(b, level)
            self.confidence_buttons.append(b)
            row.addWidget(b)
        self.confidence_group.idClicked.connect(self.set_confidence)
        row.addWidget(self.confidence_high)
        row.addStretch(1)
        box.setVisible(False)
        return box

    def _build_answers(self) -> QWidget:
        """The answers of a real-or-synthetic study (two equal buttons), hidden for the other kinds."""
        box = self.answer_box = QWidget()
        box.setObjectName("answerBox")
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        self.answer_group = QButtonGroup(self)
        self.answer_group.setExclusive(True)
        self.answer_buttons: list[QPushButton] = []
        for i in range(2):
            b = QPushButton()
            b.setObjectName(f"answer{i}")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setMinimumWidth(160)
            b.setStyleSheet("font-size: 14pt; padding: 6px;")
            self.answer_group.addButton(b, i)
            self.answer_buttons.append(b)
            row.addWidget(b)
        self.answer_group.idClicked.connect(self.select)
        row.addStretch(1)
        box.setVisible(False)
        return box

    def answers(self) -> tuple[str, ...] | None:
        return self._case.answers if self._case else None

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

    def confidence(self) -> int | None:
        return self._confidence

    def asks_confidence(self) -> bool:
        return bool(self._case and (self._case.ask_confidence or self._case.rates_disease))

    def rates_disease(self) -> bool:
        return bool(self._case and self._case.rates_disease)

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
        rating = case.rates_disease
        self.confidence_prompt.setText(RATING_PROMPT if rating else CONFIDENCE_PROMPT)
        self.confidence_low.setText("1 = definitely not" if rating else "1 = not at all")
        self.confidence_high.setText("5 = definitely" if rating else "5 = completely")
        self.confirm_button.setText("Confirm rating (Enter)" if rating else "Confirm choice (Enter)")
        self.confidence_box.setVisible(case.ask_confidence or rating)
        answers = case.answers or ()
        for i, b in enumerate(self.answer_buttons):
            b.setVisible(i < len(answers))
            if i < len(answers):
                b.setText(f"{answers[i]}  ({answers[i][0].upper()})")
        self.answer_box.setVisible(bool(answers))
        self.stack.setCurrentWidget(self.grid)
        self._confidence = None
        self._set_choice(0 if rating else case.previous_choice)
        self.set_confidence(case.previous_confidence if case.ask_confidence or rating else None)
        self.setFocus()
        self._clock.start()

    def show_message(self, text: str) -> None:
        """A neutral screen (blank between cases, waiting, end of the study)."""
        self.blank.setText(text)
        self.stack.setCurrentWidget(self.blank)
        self.disease.setText("")  # the last case's label must not outlive its case
        self.disease.setVisible(False)
        self._choice = None  # nothing is chosen while nothing is shown
        for pane in self.grid.panes():
            pane.set_selected(False)
        self.set_confidence(None)
        self.confidence_box.setVisible(False)
        self.answer_box.setVisible(False)
        self.confirm_button.setEnabled(False)
        self.choice_label.setText("")

    def showing_case(self) -> bool:
        return self.stack.currentWidget() is self.grid and self._case is not None

    def _end_blank(self) -> None:
        if self._pending is not None:
            self.show_case(self._pending)

    # -- choosing --------------------------------------------------------------------------

    def _set_choice(self, index: int | None) -> None:
        answers = self.answers()
        count = len(answers) if answers else len(self.grid.panes())
        self._choice = index if index is not None and 0 <= index < count else None
        for i, pane in enumerate(self.grid.panes()):
            pane.set_selected(i == self._choice and not answers)
        self.answer_group.setExclusive(False)
        for i, b in enumerate(self.answer_buttons):
            b.setChecked(bool(answers) and i == self._choice)
        self.answer_group.setExclusive(True)
        self._update_prompt()

    def set_confidence(self, level: int | None) -> None:
        """Set the rating (None clears it); ignored while no case is shown or the study does not ask."""
        if level is not None and (level not in CONFIDENCE_LEVELS or not self.showing_case()
                                  or not self.asks_confidence()):
            return
        self._confidence = level
        self.confidence_group.setExclusive(False)  # an exclusive group cannot uncheck its last button
        for b in self.confidence_buttons:
            b.setChecked(self.confidence_group.id(b) == level)
        self.confidence_group.setExclusive(True)
        self._update_prompt()

    def _update_prompt(self) -> None:
        """Confirm is possible once a pane is chosen (and rated, when asked); the hint says what is missing."""
        missing_rating = self.asks_confidence() and self._confidence is None
        self.confirm_button.setEnabled(self._choice is not None and not missing_rating)
        labels = self._case.pane_labels() if self._case else []
        keys = f"{labels[0]}–{labels[-1]}" if labels else ""
        answers = self.answers()
        if self.rates_disease():
            text = "Rate the image (1 – 5)" if missing_rating else f"Your rating: {self._confidence}"
        elif answers:
            keys = ", ".join(a[0].upper() for a in answers)
            text = (f"Choose an answer or press {keys}" if self._choice is None
                    else f"Your answer: {answers[self._choice]}" + (" — now rate your confidence"
                                                                    if missing_rating else ""))
        elif self._choice is None:
            text = f"Click an image or press {keys}"
        elif missing_rating:
            text = f"Your choice: image {labels[self._choice]} — now rate your confidence"
        else:
            text = f"Your choice: image {labels[self._choice]}"
        self.choice_label.setText(text)

    def select(self, index: int) -> None:
        if self.showing_case() and not self.rates_disease():
            self._set_choice(index)

    def _pane_clicked(self, pane: ImagePane) -> None:
        if self.answers():  # the film itself is not an answer
            return
        if pane in self.grid.panes():
            self.select(self.grid.panes().index(pane))
            self.setFocus()

    def confirm(self) -> None:
        if self.showing_case() and self.confirm_button.isEnabled():
            self.confirmed.emit(self._choice, int(self._clock.elapsed()),
                                self._confidence if self.asks_confidence() else None)

    def _step_confidence(self, step: int) -> None:
        if self._confidence is None:  # from empty, Up starts at the bottom and Down at the top: no default
            self.set_confidence(CONFIDENCE_LEVELS[0] if step > 0 else CONFIDENCE_LEVELS[-1])
        else:
            self.set_confidence(min(max(self._confidence + step, CONFIDENCE_LEVELS[0]), CONFIDENCE_LEVELS[-1]))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        labels = [label.upper() for label in self._case.pane_labels()] if self._case else []
        if self.answers():  # answer initials (R, S), not the film's neutral label
            labels = [a[0].upper() for a in self.answers()]
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if (ctrl or self.rates_disease()) and Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
            self.set_confidence(key - Qt.Key.Key_0)
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and self.asks_confidence():
            self._step_confidence(1 if key == Qt.Key.Key_Up else -1)
        elif Qt.Key.Key_1 <= key <= Qt.Key.Key_9:
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

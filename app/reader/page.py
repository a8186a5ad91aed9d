"""Reader mode: pick who you are and the study, then answer its queries one by one, blinded.

Everything the study engine does (opening the session, reading renditions, storing votes
and where the reader is) runs in workers through :mod:`app.study_service`. The next case is
prefetched while the reader looks at the current one, so it appears at once after a vote.
Votes and moves are written in order on one serial worker; a failed vote puts the reader
back on that case with a one-line message. The reader's position is kept in the study
database, so reading resumes where it stopped on any workstation.

While a session is open the main window is locked in reader mode (blinding: no results, no
file names); leaving it takes "End reading session" and a confirmation.
Nothing on this page names a candidate: panes are numbered, messages are neutral.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import qt_util, settings, workers
from app.qt_util import confirm, show_error
from app.reader.case_display import CaseDisplay
from app.reader.case_view import CaseView
from app.study_service import ReadingHandle, StudyService, StudySummary

log = logging.getLogger(__name__)
BLANK_MS = 800
PREFETCH_AHEAD = 2


class ReaderPage(QWidget):
    """See the module docstring."""

    status = Signal(str)
    sessionChanged = Signal()

    def __init__(self, database: str | None, parent: QWidget | None = None,
                 service: StudyService | None = None) -> None:
        super().__init__(parent)
        self.service = service or StudyService(database)
        self._studies: list[StudySummary] = []
        self._handle: ReadingHandle | None = None
        self._position = 0
        self._cases: dict[int, CaseDisplay] = {}
        self._retry_after_votes: int | None = None  # a diagnosis session refused while answers were saving
        self._choices: dict[int, tuple[int, int | None]] = {}  # this session's latest (pane, confidence) per case
        self._loading: dict[int, workers.Task] = {}
        self._want: int | None = None  # position waiting for its images
        self._pending_votes = 0
        self._choose_after_refresh: tuple[object, object, bool] | None = None
        self._session_study: StudySummary | None = None  # the study of the open session (protected or not)
        self._build()

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.stack = QStackedWidget()
        layout.addWidget(self.stack)

        chooser = QWidget()
        outer = QVBoxLayout(chooser)
        outer.addStretch(1)
        box = QWidget()
        box.setMaximumWidth(560)
        form = QFormLayout(box)
        title = QLabel("Blinded reading")
        title.setStyleSheet("font-size: 18pt; font-weight: 600;")
        form.addRow(title)
        intro = QLabel("Choose the study and who you are. Your answers are saved as you go; "
                       "you can stop at any time and continue later from the same case.")
        intro.setWordWrap(True)
        form.addRow(intro)
        self.study_combo = QComboBox()
        self.study_combo.currentIndexChanged.connect(self._study_changed)
        form.addRow("Study:", self.study_combo)
        self.reader_combo = QComboBox()
        self.reader_combo.currentIndexChanged.connect(lambda _i: self._update_start())
        form.addRow("Reader:", self.reader_combo)
        self.blank_check = QCheckBox("Blank screen between cases")
        self.blank_check.setChecked(settings.value("reader/blank", "0") == "1")
        self.blank_check.toggled.connect(lambda on: settings.set_value("reader/blank", "1" if on else "0"))
        form.addRow(self.blank_check)
        self.chooser_note = QLabel()
        self.chooser_note.setWordWrap(True)
        self.chooser_note.setObjectName("chooserNote")
        form.addRow(self.chooser_note)
        row = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.start_button = QPushButton("Start reading")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        row.addWidget(self.start_button)
        form.addRow(row)
        centered = QHBoxLayout()
        centered.addStretch(1)
        centered.addWidget(box)
        centered.addStretch(1)
        outer.addLayout(centered)
        outer.addStretch(2)
        self.stack.addWidget(chooser)
        self.chooser = chooser

        self.view = CaseView()
        self.view.confirmed.connect(self._vote)
        self.view.previousRequested.connect(lambda: self.go_to(self._position - 1))
        self.view.nextRequested.connect(lambda: self.go_to(self._position + 1))
        self.end_button = QPushButton("End reading session…")
        self.end_button.setObjectName("endSession")
        self.end_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.end_button.clicked.connect(self.request_end)
        self.view.bottom.insertWidget(0, self.end_button)
        self.stack.addWidget(self.view)
        self.reading = self.view

    # -- page protocol (main window) -------------------------------------------------------

    def activated(self) -> None:
        if self._handle is None:
            self.refresh()

    def can_leave(self) -> bool:
        """Not while a session is open: it must be ended explicitly (see ``request_end``)."""
        return self._handle is None

    def shutdown(self) -> None:
        for task in self._loading.values():
            task.cancel()

    def in_session(self) -> bool:
        return self._handle is not None

    def position(self) -> int:
        return self._position

    def key_help(self) -> list[tuple[str, str]]:
        """The keys the case view handles itself (CaseView.keyPressEvent), for the shortcuts sheet (F1)."""
        if self._handle is None:
            return [("Enter", "Start reading (the default button)")]
        rows = [("1 … 9, or a pane's letter", "Choose that pane (a rating, in a diagnosis study)"),
                ("Enter", "Confirm the answer and go on"),
                ("Left, Page Up", "Previous case"), ("Right, Page Down", "Next case (once answered)")]
        if self._handle.asks_confidence:
            rows += [("Ctrl+1 … Ctrl+5", "Rate your confidence"), ("Up, Down", "Step the confidence")]
        return rows

    def handle(self) -> ReadingHandle | None:
        return self._handle

    # -- choosing a study and reader -------------------------------------------------------

    def refresh(self) -> workers.Task:
        self.chooser_note.setText("Looking for studies…")
        self.start_button.setEnabled(False)
        return workers.submit(lambda ctx: self.service.list_studies(), owner=self, name="Listing studies",
                              done=self._fill_studies, failed=self._chooser_failed)

    def _chooser_failed(self, message: str) -> None:
        self.chooser_note.setText(message)

    def _fill_studies(self, studies: list[StudySummary]) -> None:
        self._studies = studies
        last = settings.value("reader/study")
        self.study_combo.blockSignals(True)
        self.study_combo.clear()
        for s in studies:
            self.study_combo.addItem(s.name, s.id)
        index = next((i for i, s in enumerate(studies) if str(s.id) == last), 0)
        self.study_combo.setCurrentIndex(index if studies else -1)
        self.study_combo.blockSignals(False)
        self._study_changed()
        if not studies:
            self.chooser_note.setText("No study in this database yet. Create one in Study administration "
                                      "(or run 'r2c-review demo').")
        if self._choose_after_refresh is not None:
            study_id, reader_id, by_name = self._choose_after_refresh
            self._choose_after_refresh = None
            self.choose(study_id, reader_id, by_name=by_name, _listed=True)

    def _current_study(self) -> StudySummary | None:
        i = self.study_combo.currentIndex()
        return self._studies[i] if 0 <= i < len(self._studies) else None

    def _study_changed(self, _index: int = 0) -> None:
        study = self._current_study()
        self.reader_combo.clear()
        if study is None:
            self._update_start()
            return
        last = settings.value("reader/reader")
        for r in study.readers:
            self.reader_combo.addItem(f"{r.name}  ({r.answered} / {r.assigned} answered)", r.id)
        index = next((i for i, r in enumerate(study.readers) if str(r.id) == last), 0)
        self.reader_combo.setCurrentIndex(index if study.readers else -1)
        self.chooser_note.setText(study.reading_note)
        self._update_start()

    def _update_start(self) -> None:
        study = self._current_study()
        self.start_button.setEnabled(bool(study and study.ready and self.reader_combo.currentIndex() >= 0))

    def choose(self, study_id: object, reader_id: object | None = None, *, by_name: bool = False,
               _listed: bool = False) -> None:
        """Select a study (by id, or by name) and a reader, and start reading; lists the studies first."""
        def matches(s: StudySummary) -> bool:
            return (s.name if by_name else str(s.id)) == str(study_id)

        if not _listed:
            self._choose_after_refresh = (study_id, reader_id, by_name)
            self.refresh()
            return
        index = next((i for i, s in enumerate(self._studies) if matches(s)), None)
        if index is None:
            self.chooser_note.setText(f"The study {study_id} is not in this database.")
            return
        self.study_combo.setCurrentIndex(index)
        self._study_changed()
        if reader_id is not None:
            j = next((k for k in range(self.reader_combo.count())
                      if str(self.reader_combo.itemData(k)) == str(reader_id)), -1)
            self.reader_combo.setCurrentIndex(j)
            if j >= 0:
                self.start()

    def choose_named(self, study_name: str, reader: str | None = None) -> None:
        self.choose(study_name, reader, by_name=True)

    # -- the session -----------------------------------------------------------------------

    def start(self) -> workers.Task | None:
        study, reader_id = self._current_study(), self.reader_combo.currentData()
        if study is None or reader_id is None:
            return None
        settings.set_value("reader/study", str(study.id))
        settings.set_value("reader/reader", str(reader_id))
        args: tuple = (study.id, reader_id)
        if study.protected:  # checked in the worker (scrypt, and a delay after a wrong PIN); never stored here
            pin = qt_util.ask_secret(self, "Reader PIN", f"PIN of {self.reader_combo.currentText().split('  (')[0]}:")
            if pin is None:
                return None
            args = (study.id, reader_id, pin)
        self.start_button.setEnabled(False)
        self._session_study = study
        return workers.submit(lambda ctx: self.service.open_reading(*args), owner=self,
                              name="Opening the session", done=self._opened, failed=self._open_failed)

    def _open_failed(self, message: str) -> None:
        self._update_start()
        self.chooser_note.setText(message)
        show_error(self, message)

    def _opened(self, handle: ReadingHandle) -> None:
        self._handle = handle
        self._cases.clear()
        self._choices.clear()
        self.stack.setCurrentWidget(self.reading)
        self.sessionChanged.emit()
        self.go_to(handle.resume_position())

    def request_end(self) -> bool:
        """End the session after the reader confirms; returns whether it ended."""
        if self._handle is None:
            return True
        if not confirm(self, "End reading session",
                       "End this reading session?\n\nYour answers are saved. You can continue later, on this or "
                       "another workstation, from the case you are on now."):
            self.view.setFocus()
            return False
        if not self._admin_allows_end():
            self.view.setFocus()
            return False
        self.stop()
        return True

    def _admin_allows_end(self) -> bool:
        """A protected study's session ends only with the administrator's password (readers cannot leave the
        locked reader mode for results on their own). One scrypt check on this thread: it blocks briefly."""
        study = self._session_study
        if study is None or not study.protected:
            return True
        password = qt_util.ask_secret(self, "End reading session", "Administrator password:")
        if password is None:
            return False
        try:
            self.service.check_admin_password(study.id, password)
        except Exception as exc:  # noqa: BLE001 - one line to the user, never a traceback
            show_error(self, str(exc).split(": ", 1)[-1] or "Wrong administrator password")
            return False
        return True

    def stop(self) -> None:
        """End the session without asking: back to the chooser (answers and position are stored already)."""
        self.shutdown()
        self._handle = None
        self._cases.clear()
        self._loading.clear()
        self.stack.setCurrentWidget(self.chooser)
        self.sessionChanged.emit()
        self.refresh()

    def go_to(self, position: int, blank: bool = False) -> None:
        handle = self._handle
        if handle is None:
            return
        if position >= handle.total:
            self._position = handle.total
            self._remember(handle, self._position)
            self.view.show_message(f"All {handle.total} cases answered. Thank you!\n\n"
                                   "Use ◀ Previous to review an answer, or End reading session to leave.")
            self.view.prev_button.setEnabled(True)
            self.view.progress.setText(f"{handle.total} / {handle.total}")
            return
        position = max(0, position)
        self._position = position
        self._remember(handle, position)
        case = self._cases.get(position)
        if case is not None:
            self.view.show_case(case, BLANK_MS if blank and self.blank_check.isChecked() else 0)
        else:
            self._want = position
            self.view.show_message("")
            self._load(position)
        self._prefetch(position)

    def _remember(self, handle: ReadingHandle, position: int) -> None:
        """Store the move in the study database, in order with the votes (serial worker)."""
        workers.submit(lambda ctx: handle.remember_position(position), owner=self, name="Saving the position",
                       serial=True, failed=lambda m: log.warning("position %d not saved: %s", position + 1, m))

    def _load(self, position: int) -> None:
        if position in self._loading or position in self._cases or self._handle is None:
            return
        if not 0 <= position < self._handle.total:
            return
        handle = self._handle
        self._loading[position] = workers.submit(
            lambda ctx: handle.case(position), owner=self, name="Preparing the next case", priority=1,
            done=lambda case: self._case_ready(handle, position, case),
            failed=lambda m: self._case_failed(position, m), cancelled=lambda: self._loading.pop(position, None))

    def _prefetch(self, position: int) -> None:
        for p in range(position + 1, position + 1 + PREFETCH_AHEAD):
            self._load(p)
        for p in [p for p in self._cases if abs(p - position) > PREFETCH_AHEAD + 1]:
            del self._cases[p]

    def _case_ready(self, handle: ReadingHandle, position: int, case: CaseDisplay) -> None:
        self._loading.pop(position, None)
        if handle is not self._handle:
            return
        if position in self._choices:
            choice, confidence = self._choices[position]
            case = replace(case, previous_choice=choice, previous_confidence=confidence, can_next=True)
        self._cases[position] = case
        if self._want == position and self._position == position:
            self._want = None
            self.view.show_case(case)

    def _case_failed(self, position: int, message: str) -> None:
        # The engine's message may name a rendition file; keep it out of the reader's sight.
        log.warning("case %d could not be prepared: %s", position + 1, message)
        self._loading.pop(position, None)
        session_rule = "washout" in message or "finish session" in message  # diagnosis modality sessions
        if session_rule and self._pending_votes and position == self._position:
            self._retry_after_votes = position  # the session may open once the answers being saved land
            return
        if position == self._position:
            text = "This case cannot be shown right now. Please tell the study administrator."
            if session_rule:  # say why and when to come back (the message names no candidate)
                text = message.split(": ", 1)[-1]
            self.view.show_message(text)
            show_error(self, text)

    def _vote(self, choice: int, elapsed_ms: int, confidence: int | None = None) -> None:
        handle, position = self._handle, self._position
        if handle is None:
            return
        self._pending_votes += 1
        # The answered case changes (its stored choice): drop it so a revisit reloads it, and remember the
        # choice here so that a revisit before the write lands still shows it.
        self._cases.pop(position, None)
        self._choices[position] = (choice, confidence)
        workers.submit(lambda ctx: handle.vote(position, choice, elapsed_ms, confidence), owner=self,
                       name="Saving the answer", serial=True, done=lambda _r: self._voted(),
                       failed=lambda m: self._vote_failed(position, m))
        self.go_to(position + 1, blank=True)

    def _voted(self) -> None:
        self._pending_votes -= 1
        if self._retry_after_votes is not None and not self._pending_votes:
            retry, self._retry_after_votes = self._retry_after_votes, None
            if retry == self._position:
                self._want = retry
                self._load(retry)

    def _vote_failed(self, position: int, message: str) -> None:
        log.warning("vote on case %d was not saved: %s", position + 1, message)
        self._choices.pop(position, None)
        self._cases.pop(position, None)
        self._pending_votes -= 1
        show_error(self, "Your answer was not saved; please answer this case again. "
                         "If this happens again, tell the study administrator.")
        self.go_to(position)

    def votes_pending(self) -> int:
        return self._pending_votes

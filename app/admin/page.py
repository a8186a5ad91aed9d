"""Study administration: the studies in the database, creating one, preparing its images
(precompute, with progress and cancel), reader progress, merging votes read at another site,
and the statistics with export.

All engine work runs in workers through :class:`~app.study_service.StudyService`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import qt_util, workers
from app.admin.credentials import ask_new_credentials, show_pins
from app.admin.stats_view import StatisticsView
from app.qt_util import show_error
from app.study_service import NewStudyRequest, StudyService, StudySummary

ID_ROLE = Qt.ItemDataRole.UserRole


class AdminPage(QWidget):
    """See the module docstring."""

    status = Signal(str)
    openReader = Signal(object, object)  # study id, reader id

    def __init__(self, database: str | None, parent: QWidget | None = None,
                 service: StudyService | None = None) -> None:
        super().__init__(parent)
        self.service = service or StudyService(database)
        self._studies: list[StudySummary] = []
        self._precompute: workers.Task | None = None
        self._select_after: object = None
        self._select_name: str | None = None
        self._build()

    def _build(self) -> None:
        layout = QHBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        layout.addWidget(split)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("Studies"))
        self.study_list = QListWidget()
        self.study_list.setObjectName("studyList")
        self.study_list.currentRowChanged.connect(self._study_selected)
        ll.addWidget(self.study_list, 1)
        self.new_button = QPushButton("New study…")
        self.new_button.clicked.connect(self.new_study_dialog)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        row = QHBoxLayout()
        row.addWidget(self.new_button)
        row.addWidget(self.refresh_button)
        ll.addLayout(row)
        split.addWidget(left)

        self.tabs = QTabWidget()
        overview = QWidget()
        ol = QVBoxLayout(overview)
        self.title = QLabel("No study selected")
        self.title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        ol.addWidget(self.title)
        self.facts_box = QGroupBox("Study")
        self.facts = QFormLayout(self.facts_box)
        ol.addWidget(self.facts_box)
        row = QHBoxLayout()
        self.lock_note = QLabel()
        self.lock_note.setObjectName("lockNote")
        self.lock_note.setWordWrap(True)
        self.unlock_button = QPushButton("Unlock…")
        self.unlock_button.setToolTip("Administration and statistics of a protected study need its "
                                      "administrator password")
        self.unlock_button.clicked.connect(self.unlock_dialog)
        self.passwords_button = QPushButton("Set passwords…")
        self.passwords_button.setToolTip("Set the administrator password and new PINs for every reader")
        self.passwords_button.clicked.connect(self.passwords_dialog)
        row.addWidget(self.lock_note, 1)
        row.addWidget(self.unlock_button)
        row.addWidget(self.passwords_button)
        ol.addLayout(row)

        box = QGroupBox("Images for reading (precompute)")
        pl = QVBoxLayout(box)
        self.precompute_label = QLabel()
        self.precompute_label.setWordWrap(True)
        pl.addWidget(self.precompute_label)
        row = QHBoxLayout()
        self.precompute_bar = QProgressBar()
        self.precompute_button = QPushButton("Prepare images")
        self.precompute_button.clicked.connect(self.start_precompute)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_precompute)
        row.addWidget(self.precompute_bar, 1)
        row.addWidget(self.precompute_button)
        row.addWidget(self.cancel_button)
        pl.addLayout(row)
        ol.addWidget(box)

        box = QGroupBox("Readers")
        rl = QVBoxLayout(box)
        self.readers = QTableWidget(0, 3)
        self.readers.setObjectName("readerTable")
        self.readers.setHorizontalHeaderLabels(["Reader", "Answered", "Progress"])
        self.readers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.readers.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.readers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.readers.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.readers.verticalHeader().setVisible(False)
        rl.addWidget(self.readers)
        self.import_note = QLabel()
        self.import_note.setObjectName("importNote")
        self.import_note.setWordWrap(True)
        rl.addWidget(self.import_note)
        self.import_button = QPushButton("Import votes…")
        self.import_button.setToolTip("Merge the votes.csv another site exported from this same study")
        self.import_button.clicked.connect(self.import_dialog)
        self.read_button = QPushButton("Read as the selected reader")
        self.read_button.clicked.connect(self._read_as)
        row = QHBoxLayout()
        row.addWidget(self.import_button)
        row.addStretch(1)
        row.addWidget(self.read_button)
        rl.addLayout(row)
        ol.addWidget(box, 1)
        self.tabs.addTab(overview, "Overview")

        self.stats = StatisticsView()
        self.stats.refreshRequested.connect(self.load_stats)
        self.stats.exportRequested.connect(self.export_dialog)
        self.tabs.addTab(self.stats, "Statistics")
        self.tabs.currentChanged.connect(lambda _i: self._tab_changed())
        split.addWidget(self.tabs)
        split.setSizes([260, 1000])
        self._show_study(None)

    # -- page protocol ---------------------------------------------------------------------

    def activated(self) -> None:
        self.refresh()

    def shutdown(self) -> None:
        self.cancel_precompute()

    # -- studies ---------------------------------------------------------------------------

    def studies(self) -> list[StudySummary]:
        return list(self._studies)

    def current_study(self) -> StudySummary | None:
        row = self.study_list.currentRow()
        return self._studies[row] if 0 <= row < len(self._studies) else None

    def refresh(self, select: object = None, then: Callable[[], None] | None = None) -> workers.Task:
        """List the studies again (worker); ``then`` runs after the list is shown."""
        if select is not None:
            self._select_after = select

        def filled(studies: list[StudySummary]) -> None:
            self._fill(studies)
            if then is not None:
                then()

        return workers.submit(lambda ctx: self.service.list_studies(), owner=self, name="Listing studies",
                              done=filled, failed=self._failed)

    def _failed(self, message: str) -> None:
        self.status.emit(message)
        show_error(self, message)

    def _fill(self, studies: list[StudySummary]) -> None:
        current = self.current_study()
        wanted = self._select_after if self._select_after is not None else (current.id if current else None)
        if self._select_name is not None:
            wanted = next((s.id for s in studies if s.name == self._select_name), wanted)
        self._select_after = self._select_name = None
        self._studies = studies
        self.study_list.blockSignals(True)
        self.study_list.clear()
        for s in studies:
            item = QListWidgetItem(s.name if s.ready else f"{s.name} (not ready)")
            item.setData(ID_ROLE, s.id)
            self.study_list.addItem(item)
        row = next((i for i, s in enumerate(studies) if str(s.id) == str(wanted)), 0 if studies else -1)
        self.study_list.setCurrentRow(row)
        self.study_list.blockSignals(False)
        self._study_selected(row)

    def select_study(self, study_id: object) -> None:
        self.refresh(select=study_id)

    def select_study_named(self, name: str) -> None:
        self._select_name = name
        self.refresh()

    def _study_selected(self, row: int) -> None:
        self._show_study(self._studies[row] if 0 <= row < len(self._studies) else None)
        self._tab_changed()

    def _show_study(self, study: StudySummary | None) -> None:
        while self.facts.rowCount():
            self.facts.removeRow(0)
        self.readers.setRowCount(0)
        locked = study is not None and study.protected and not self._unlocked(study)
        enabled = study is not None and not locked
        for w in (self.precompute_button, self.read_button, self.stats, self.import_button, self.passwords_button):
            w.setEnabled(enabled)
        self.unlock_button.setVisible(locked)
        self.facts_box.setVisible(not locked)
        self.lock_note.setText("" if study is None else
                               "Protected study: administration and statistics need the administrator password."
                               if locked else "" if study.protected else
                               "Open study: no passwords, anyone can read as any reader.")
        if locked:
            self.title.setText(f"{study.name} (locked)")
            self.precompute_label.setText("")
            self.stats.set_stats(None)
            return
        if study is None:
            self.title.setText("No study selected" if self._studies else
                               "No studies yet: create one with “New study…” (or run r2c-review demo)")
            self.precompute_label.setText("")
            self.precompute_bar.setValue(0)
            self.stats.set_stats(None)
            return
        self.title.setText(study.name)
        for label, value in study.facts:
            self.facts.addRow(f"{label}:", QLabel(value))
        done, total = study.precomputed
        self.precompute_bar.setRange(0, max(total, 1))
        self.precompute_bar.setValue(done)
        running = self._precompute is not None
        self.precompute_label.setText(
            "All images are prepared: readers can start." if study.ready else
            f"{done} of {total} images prepared. Readers can start once all are ready; "
            "preparing can be interrupted and resumed.")
        self.precompute_button.setEnabled(not study.ready and not running)
        self.cancel_button.setEnabled(running)
        self.readers.setRowCount(len(study.readers))
        for i, r in enumerate(study.readers):
            name = QTableWidgetItem(r.name)
            name.setData(ID_ROLE, r.id)
            self.readers.setItem(i, 0, name)
            self.readers.setItem(i, 1, QTableWidgetItem(f"{r.answered} / {r.assigned}"))
            self.readers.setItem(i, 2, QTableWidgetItem(f"{r.answered / r.assigned:.0%}" if r.assigned else "–"))
        if study.readers:
            self.readers.selectRow(0)
        self.read_button.setEnabled(study.ready and bool(study.readers))

    def _tab_changed(self) -> None:
        study = self.current_study()
        if self.tabs.currentWidget() is self.stats and study is not None and self._unlocked(study):
            self.load_stats()

    # -- the administrator password ----------------------------------------------------------

    def _unlocked(self, study: StudySummary) -> bool:
        unlocked_here = getattr(self.service, "unlocked_here", None)
        return not study.protected or (unlocked_here is not None and unlocked_here(study.id))

    def unlock_dialog(self) -> workers.Task | None:
        study = self.current_study()
        if study is None:
            return None
        password = qt_util.ask_secret(self, "Unlock study", f"Administrator password of {study.name}:")
        if password is None:
            return None
        return workers.submit(lambda ctx: self.service.unlock_admin(study.id, password), owner=self,
                              name="Checking the password", done=lambda _r: self.refresh(select=study.id),
                              failed=self._failed)

    def passwords_dialog(self) -> workers.Task | None:
        """New administrator password and generated reader PINs, shown once to hand out."""
        study = self.current_study()
        if study is None:
            return None
        current = None
        if study.protected:
            current = qt_util.ask_secret(self, "Set passwords", f"Current administrator password of {study.name}:")
            if current is None:
                return None
        new = ask_new_credentials(self, [r.name for r in study.readers])
        if new is None:
            return None
        admin, pins = new
        return workers.submit(lambda ctx: self.service.set_passwords(study.id, admin, pins, current), owner=self,
                              name="Setting passwords", failed=self._failed,
                              done=lambda _r: (show_pins(self, study.name, pins), self.refresh(select=study.id)))

    def _read_as(self) -> None:
        study = self.current_study()
        row = self.readers.currentRow()
        if study is not None and 0 <= row < len(study.readers):
            self.openReader.emit(study.id, study.readers[row].id)

    # -- creating --------------------------------------------------------------------------

    def new_study_dialog(self) -> None:
        from app.admin.new_study import NewStudyDialog

        dialog = NewStudyDialog(self)
        if dialog.exec():
            spec = dialog.spec()
            if dialog.protect.isChecked():
                new = ask_new_credentials(self, spec.readers)
                if new is None:
                    return
                spec.admin_password, spec.reader_pins = new
            self.create_study(spec, precompute=dialog.precompute.isChecked())

    def create_study(self, spec: NewStudyRequest, precompute: bool = True) -> workers.Task:
        self.status.emit(f"Creating study {spec.name}…")
        return workers.submit(lambda ctx: self.service.create_study(spec, ctx.progress), owner=self,
                              name="Creating the study",
                              done=lambda sid: self._created(sid, precompute, spec), failed=self._failed)

    def _created(self, study_id: object, precompute: bool, spec: NewStudyRequest | None = None) -> None:
        self.status.emit("Study created")
        if spec is not None and spec.reader_pins:
            show_pins(self, spec.name, spec.reader_pins)
        self.refresh(select=study_id, then=self.start_precompute if precompute else None)

    # -- precompute ------------------------------------------------------------------------

    def start_precompute(self) -> workers.Task | None:
        study = self.current_study()
        if study is None or self._precompute is not None or study.ready:
            return None
        self.precompute_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.precompute_label.setText("Preparing images…")
        sid = study.id
        self._precompute = workers.submit(
            lambda ctx: self.service.precompute(sid, ctx.progress, ctx.cancelled), owner=self,
            name="Preparing images", progress=self._precompute_progress, done=lambda _r: self._precompute_end("done"),
            failed=lambda m: self._precompute_end(m), cancelled=lambda: self._precompute_end("cancelled"))
        return self._precompute

    def cancel_precompute(self) -> None:
        if self._precompute is not None:
            self._precompute.cancel()
            self.precompute_label.setText("Cancelling…")

    def precompute_running(self) -> bool:
        return self._precompute is not None

    def _precompute_progress(self, done: int, total: int, _message: str) -> None:
        self.precompute_bar.setRange(0, max(total, 1))
        self.precompute_bar.setValue(done)
        self.precompute_label.setText(f"Preparing images: {done} of {total}")

    def _precompute_end(self, outcome: str) -> None:
        self._precompute = None
        self.cancel_button.setEnabled(False)
        if outcome == "done":
            self.status.emit("All images prepared")
        elif outcome == "cancelled":
            self.status.emit("Preparing images cancelled; it resumes where it stopped")
        else:
            self._failed(outcome)
        self.refresh()

    # -- importing votes -------------------------------------------------------------------

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import votes from another site", "", "Votes (*.csv)")
        if path:
            self.import_votes(Path(path))

    def import_votes(self, csv_path: Path) -> workers.Task | None:
        """Merge ``csv_path`` into the selected study in a worker (all rows or none)."""
        study = self.current_study()
        if study is None:
            return None
        sid = study.id
        self.import_button.setEnabled(False)
        self.import_note.setText(f"Importing votes from {csv_path.name}…")
        return workers.submit(lambda ctx: self.service.import_votes(sid, csv_path), owner=self,
                              name="Importing votes", done=lambda n: self._imported(n, csv_path),
                              failed=self._import_failed)

    def _imported(self, count: int, csv_path: Path) -> None:
        self.import_button.setEnabled(True)
        message = f"Imported {count} vote{'s' if count != 1 else ''} from {csv_path.name}"
        self.import_note.setText(message)
        self.status.emit(message)
        self.refresh()  # reader progress, vote count and (on its tab) the statistics change

    def _import_failed(self, message: str) -> None:
        self.import_button.setEnabled(self.current_study() is not None)
        self.import_note.setText(message)
        self._failed(message)

    # -- statistics ------------------------------------------------------------------------

    def load_stats(self) -> workers.Task | None:
        study = self.current_study()
        if study is None:
            return None
        sid = study.id
        return workers.submit(lambda ctx: self.service.statistics(sid), owner=self, name="Statistics",
                              done=self.stats.set_stats, failed=self._failed)

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the study's results to")
        if folder:
            self.export_to(Path(folder))

    def export_to(self, folder: Path) -> workers.Task | None:
        study = self.current_study()
        if study is None:
            return None
        sid = study.id
        return workers.submit(lambda ctx: self.service.export(sid, folder), owner=self, name="Export",
                              done=lambda paths: self.status.emit(f"Exported {len(paths)} files to {folder}"),
                              failed=self._failed)

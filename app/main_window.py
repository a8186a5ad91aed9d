"""The main window: three modes (viewer, blinded reader, study administration) over one database.

Only the viewer is built at start-up; the reader and administration pages (which need the
study engine) are built the first time they are opened, so the window shows fast. In
reader mode everything that could identify a pane's source is hidden: the file list,
the viewer's info panel, status messages from other pages.

While a reading session is open the window is locked in reader mode: the viewer,
administration and statistics (and opening files, which shows the viewer) are disabled in
the menus, the mode bar and their shortcuts, so a reader cannot glance at results or file
names mid-study. "End reading session" (with a confirmation) unlocks it. Quitting (Ctrl+Q, the
menu, the window's close button) during a session asks first; a session left open that way
(or by a crash) brings the next start back to the reader picker, on the same study and reader.

The window's geometry and dock/toolbar layout and the viewer's layout are remembered across
restarts (QSettings, ``app.settings``); F1 shows every keyboard shortcut of the current mode,
read from the live actions (``app.shortcuts``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QToolBar,
    QWidget,
)

from app import gui_gc, settings, workers
from app.files import FileList
from app.qt_util import APP_NAME, confirm, show_error
from app.viewer.page import CLINICAL, STUDY, ViewerPage

VIEWER, READER, ADMIN = "viewer", "reader", "admin"
_TITLES = {VIEWER: "Viewer", READER: "Reader", ADMIN: "Study administration"}
STATUS_MS = 6000
SESSION_OPEN_KEY = "reader/session_open"  # "1" while a reading session is open (survives a quit or crash)
GEOMETRY_KEY, STATE_KEY = "window/geometry", "window/state"


def window_title(mode: str) -> str:
    """E.g. "Reader — R2C Review": ending in the application's display name, Qt does not append it again."""
    return f"{_TITLES[mode]} — {APP_NAME}"


class MainWindow(QMainWindow):
    """See the module docstring."""

    def __init__(self, database: str | None = None, service: object | None = None) -> None:
        super().__init__()
        gui_gc.install()  # cycles holding Qt objects must not be collected on worker threads
        self.database = database
        from app.study_service import StudyService

        # One door to the study engine for all pages; the database opens on first use, in a worker.
        self.service = service if service is not None else StudyService(database)
        self.setObjectName("mainWindow")
        self.resize(1400, 860)
        self.setAcceptDrops(True)
        self._pages: dict[str, QWidget] = {}
        self._mode = VIEWER
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.viewer = ViewerPage()
        self.viewer.status.connect(lambda m: self._page_status(VIEWER, m))
        self._add_page(VIEWER, self.viewer)

        self.files = FileList()
        self.files.filesSelected.connect(self.viewer.show_files)
        self.files.status.connect(lambda m: self._page_status(VIEWER, m))
        self.files.problems.connect(self._problems)
        self.files_dock = QDockWidget("Images", self)
        self.files_dock.setObjectName("filesDock")
        self.files_dock.setWidget(self.files)
        self.files_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.files_dock)
        self.resizeDocks([self.files_dock], [230], Qt.Orientation.Horizontal)

        self._make_menus()
        self._make_mode_bar()
        self.statusBar().setObjectName("statusBar")
        self._restore_layout()
        self._set_mode(VIEWER)
        if settings.value(SESSION_OPEN_KEY) == "1":  # quit or crashed mid-session: back where the reader was
            self._set_mode(READER)
            self.statusBar().showMessage("A reading session was left open: choose your name to continue it.",
                                         STATUS_MS)

    # -- menus and modes -------------------------------------------------------------------

    def _make_menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        act = menu.addAction("&Open files…", self.open_files_dialog)
        act.setShortcut(QKeySequence.StandardKey.Open)
        folder = menu.addAction("Open &folder…", self.open_folder_dialog)
        self.recent_menu = menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        menu.addSeparator()
        menu.addAction(self.files.remove_action)
        menu.addAction(self.files.clear_action)
        # They show the viewer or its file names: locked while reading.
        self.open_actions = [act, folder, self.recent_menu.menuAction(), self.files.remove_action,
                             self.files.clear_action]
        menu.addSeparator()
        self.quit_action = menu.addAction("&Quit", self.request_quit)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))  # StandardKey.Quit is empty on some platforms
        self.mode_menu = self.menuBar().addMenu("&Mode")
        help_menu = self.menuBar().addMenu("&Help")
        self.shortcuts_action = help_menu.addAction("&Keyboard shortcuts", self.show_shortcuts)
        self.shortcuts_action.setShortcut(QKeySequence(Qt.Key.Key_F1))
        help_menu.addAction("&About", self._about)

    def _make_mode_bar(self) -> None:
        bar = QToolBar("Mode")
        bar.setObjectName("modeBar")
        bar.setMovable(False)
        bar.setIconSize(QSize(16, 16))
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        group = QActionGroup(self)
        self.mode_actions: dict[str, QAction] = {}
        for i, mode in enumerate((VIEWER, READER, ADMIN)):
            action = QAction(_TITLES[mode], self)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}" if mode != VIEWER else "Ctrl+0"))
            action.triggered.connect(lambda _c=False, m=mode: self.set_mode(m))
            group.addAction(action)
            bar.addAction(action)
            self.mode_menu.addAction(action)
            self.mode_actions[mode] = action
        self.mode_actions[VIEWER].setShortcut(QKeySequence("Ctrl+Shift+V"))
        self.mode_actions[READER].setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.mode_actions[ADMIN].setShortcut(QKeySequence("Ctrl+Shift+A"))
        self.mode_menu.addSeparator()
        self.end_session_action = self.mode_menu.addAction("&End reading session…", self.end_reading_session)
        self.end_session_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        self.end_session_action.setEnabled(False)

    def _add_page(self, mode: str, page: QWidget) -> None:
        self._pages[mode] = page
        self.stack.addWidget(page)

    def page(self, mode: str) -> QWidget:
        """The page of a mode, built on first use (reader and admin need the study engine)."""
        if mode not in self._pages:
            if mode == READER:
                from app.reader.page import ReaderPage

                page = ReaderPage(self.database, service=self.service)
                page.status.connect(lambda m: self._page_status(READER, m))
                page.sessionChanged.connect(self._update_lock)
            else:
                from app.admin.page import AdminPage

                page = AdminPage(self.database, service=self.service)
                page.status.connect(lambda m: self._page_status(ADMIN, m))
                page.openReader.connect(self.open_reader)
            self._add_page(mode, page)
        return self._pages[mode]

    def mode(self) -> str:
        return self._mode

    def reading_locked(self) -> bool:
        """A reading session is open: only reader mode is reachable until it is ended."""
        reader = self._pages.get(READER)
        return reader is not None and reader.in_session()

    def _update_lock(self) -> None:
        locked = self.reading_locked()
        for mode in (VIEWER, ADMIN):
            self.mode_actions[mode].setEnabled(not locked)
        for action in self.open_actions:
            action.setEnabled(not locked)
        self.end_session_action.setEnabled(locked)
        if settings.value(SESSION_OPEN_KEY) != ("1" if locked else ""):
            settings.set_value(SESSION_OPEN_KEY, "1" if locked else "")
        if locked and self._mode != READER:
            self._set_mode(READER)

    def end_reading_session(self) -> bool:
        """Ask, then end the open reading session (unlocking the other modes); returns whether it ended."""
        reader = self._pages.get(READER)
        return reader is None or reader.request_end()

    def set_mode(self, mode: str) -> None:
        current = self._pages.get(self._mode)
        if mode != self._mode and current is not None and hasattr(current, "can_leave") and not current.can_leave():
            self.mode_actions[self._mode].setChecked(True)
            self._page_status(self._mode, "End the reading session first (Mode ▸ End reading session).")
            return
        self._set_mode(mode)

    def _set_mode(self, mode: str) -> None:
        self._mode = mode
        page = self.page(mode)
        self.stack.setCurrentWidget(page)
        self.mode_actions[mode].setChecked(True)
        self.files_dock.setVisible(mode == VIEWER)
        self.statusBar().clearMessage()
        self.setWindowTitle(window_title(mode))
        if mode in (READER, ADMIN) and self.viewer.context() == CLINICAL:
            self.viewer.set_context(STUDY)  # running a study: films viewed now may be study films
        if hasattr(page, "activated"):
            page.activated()

    def open_reader(self, study_id: object = None, reader_id: object = None) -> None:
        """Switch to reader mode, optionally on a given study and reader (from the admin page).

        An open session is never replaced behind the reader's back: it must be ended first.
        """
        self._set_mode(READER)
        if study_id is not None and not self.reading_locked():
            self._pages[READER].choose(study_id, reader_id)

    def open_reader_named(self, study_name: str, reader: str) -> None:
        self._set_mode(READER)
        if not self.reading_locked():
            self._pages[READER].choose_named(study_name, reader)

    def _page_status(self, mode: str, message: str) -> None:
        """Messages reach the status bar only from the page on screen (reader mode stays quiet)."""
        if mode == self._mode:
            self.statusBar().showMessage(message, STATUS_MS)

    def _problems(self, problems: list[str]) -> None:
        self._page_status(VIEWER, problems[0])
        if self._mode == VIEWER:
            show_error(self, "\n".join(problems[:10]) + ("\n…" if len(problems) > 10 else ""))

    # -- opening ---------------------------------------------------------------------------

    def open_paths(self, paths: list[str | Path]) -> workers.Task | None:
        if not paths or self.reading_locked():  # it would show the viewer (file names) mid-study
            return None
        for p in paths:
            settings.add_recent(p)
        if self._mode != VIEWER:
            self._set_mode(VIEWER)
        return self.files.add_paths(list(paths))

    def open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open X-ray files", settings.value("last_dir", str(Path.home())),
            "X-ray images (*.dcm *.dicom *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if files:
            settings.set_value("last_dir", str(Path(files[0]).parent))
            self.open_paths(files)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of X-rays",
                                                  settings.value("last_dir", str(Path.home())))
        if folder:
            settings.set_value("last_dir", folder)
            self.open_paths([folder])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = settings.recent_items()
        for item in items:
            self.recent_menu.addAction(item, lambda p=item: self.open_paths([p]))
        if not items:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", settings.clear_recent)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and self._mode == VIEWER:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.open_paths(paths)

    def show_shortcuts(self) -> QWidget:
        """The shortcuts sheet of the current mode (F1), built from the live actions."""
        from app.shortcuts import ShortcutsSheet

        sheet = ShortcutsSheet(self)
        sheet.open()
        return sheet

    def _restore_layout(self) -> None:
        """Window geometry, docks and toolbars, and the viewer's layout, as they were at the last quit."""
        geometry, state = settings.value_bytes(GEOMETRY_KEY), settings.value_bytes(STATE_KEY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self.viewer.restore_layout()

    def save_layout(self) -> None:
        settings.set_bytes(GEOMETRY_KEY, self.saveGeometry())
        settings.set_bytes(STATE_KEY, self.saveState())
        self.viewer.save_layout()

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"{APP_NAME}: blinded reader studies and local viewing of R2C-GAN restored chest X-rays.")

    # -- closing ---------------------------------------------------------------------------

    def may_quit(self) -> bool:
        """True outside a reading session; inside one, the reader's answer (a stray Ctrl+Q must not end it)."""
        if not self.reading_locked():
            return True
        return confirm(self, "Quit during a reading session",
                       "A reading session is open. Quit R2C Review?\n\nYour answers are saved. The next start "
                       "returns to the reader list, where you continue from the case you are on now.")

    def request_quit(self) -> bool:
        """Ctrl+Q and File ▸ Quit: ask during a session, then close; returns whether the window closed."""
        return self.may_quit() and self.close()  # close() is not spontaneous: closeEvent does not ask again

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        # The window's close button (a spontaneous event) asks like Ctrl+Q; programmatic closes do not.
        if event.spontaneous() and not self.may_quit():
            event.ignore()
            return
        self.save_layout()
        for page in self._pages.values():
            if hasattr(page, "shutdown"):
                page.shutdown()
        workers.cancel_all()
        super().closeEvent(event)


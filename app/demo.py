"""``r2c-review demo``: a study of real, openly licensed chest films (resources/demo), opened in the app.

The window appears at once; a worker creates the demo study and renders the first reader's
first cases, then the viewer lists the films, the administration page shows the study, and a
welcome panel points at the three steps of the workflow (look at images, read blinded, see the
statistics). Reading can start then: a second worker renders the rest, in a progress dialog
that can be cancelled (cases not yet rendered are made when the reader reaches them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressDialog, QPushButton, QVBoxLayout, QWidget

from app import workers


@dataclass(frozen=True)
class DemoInfo:
    study: str
    database: str  # display URL
    images: Path
    readers: list[str]
    candidates: list[str]
    generators: list[str]  # installed generator variants used as candidates

    def summary(self, database_arg: str | None = None) -> str:
        models = ("" if self.generators else
                  "\nNo trained R2C-GAN weights are installed, so the candidates are the original and classic "
                  "enhancements; install weights (resources/models or R2C_MODELS_DIR) to include the generators.")
        option = f" --database {database_arg}" if database_arg else ""
        return (f"Demo study {self.study!r} is ready in {self.database}\n"
                f"  images: {self.images}\n  candidates: {', '.join(self.candidates)}\n"
                f"  readers: {', '.join(self.readers)}{models}\n"
                f"Open it with: r2c-review demo{option}   (or: r2c-review gui{option}, then Mode ▸ Reader)")


def build_demo(database: str | None, progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None, first_only: bool = False) -> DemoInfo:
    """Create (or reuse) the demo study and prepare its images (``first_only``: the first reader's
    first cases); blocking (run in a worker)."""
    from core.study import create_demo_study, installed_generators, list_studies, open_store

    with open_store(database) as store:
        demo = create_demo_study(store, precompute=True, progress=progress, cancelled=cancelled,
                                 first_only=first_only)
        summary = next(s for s in list_studies(store) if s.name == demo.name)
        return DemoInfo(demo.name, demo.database, demo.images, [r.name for r in summary.reader_progress],
                        list(summary.candidate_names), installed_generators())


class WelcomeDialog(QDialog):
    """Where to go next, once the demo study is ready (non-modal)."""

    def __init__(self, info: DemoInfo, parent: QWidget | None = None) -> None:
        from core.study.demo import demo_credit  # the engine is loaded by now; not at start-up

        super().__init__(parent)
        self.setWindowTitle("Welcome to the demo")
        self.setObjectName("welcomeDialog")
        layout = QVBoxLayout(self)
        models = ("" if info.generators else
                  "<p><i>No trained R2C-GAN weights are installed, so the candidates here are the original and "
                  "classic enhancements. Install weights to see the generators.</i></p>")
        text = QLabel(
            f"<h3>{info.study} is ready</h3>"
            f"<p>{len(info.candidates)} versions of each of the chest films will be compared blindly "
            f"by {len(info.readers)} readers ({', '.join(info.readers)}).</p>"
            "<ol><li><b>Viewer</b>: the films are listed on the left. Drag with the left button to window, "
            "wheel to zoom, middle button to pan; <i>Compare</i> shows restorations beside the original.</li>"
            "<li><b>Reader</b>: read the study blinded, as a radiologist would. Click the image you prefer "
            "(or press its letter) and confirm with Enter.</li>"
            "<li><b>Study administration</b>: reader progress, the statistics of the votes, and export.</li></ol>"
            "<p>The demo study is <b>open</b>: no reader PINs and no administrator password, so one click "
            "starts reading. A real study gets them when it is created (or with <i>Set passwords…</i>).</p>"
            + models + (f"<p><small>{credit}; details in {info.images / 'ATTRIBUTION.txt'}</small></p>"
                        if (credit := demo_credit(info.images)) else ""))
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(text)
        layout.addStretch(1)
        row = QHBoxLayout()
        self.viewer_button = QPushButton("Look at the images")
        self.reader_button = QPushButton(f"Start reading as {info.readers[0]}")
        self.admin_button = QPushButton("See the study")
        for b in (self.viewer_button, self.reader_button, self.admin_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.resize(580, 300)


class DemoController(QObject):
    """Builds the demo in a worker (first reader's first cases), opens the window on it, renders the rest."""

    def __init__(self, window, database: str | None) -> None:  # window: app.main_window.MainWindow
        super().__init__(window)
        self.window = window
        self.database = database
        from app.viewer.page import TEACHING

        window.viewer.set_context(TEACHING)  # a demo is shown to others: identifiers hidden by default
        self.info: DemoInfo | None = None
        self.welcome: WelcomeDialog | None = None
        self.rest: workers.Task | None = None
        self.dialog = QProgressDialog("Preparing the first films to read…", "Cancel", 0, 0, window)
        self.dialog.setObjectName("demoProgress")
        self.dialog.setWindowTitle("Demo study")
        self.dialog.setWindowModality(Qt.WindowModality.NonModal)
        self.dialog.setMinimumDuration(0)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self._cancel)
        self.task = workers.submit(build_demo_task(database, first_only=True), owner=self,
                                   name="Building the demo study", progress=self._progress, done=self._ready,
                                   failed=self._failed, cancelled=lambda: window.statusBar().showMessage(
                                       "Demo study not prepared (cancelled); run 'r2c-review demo' again", 8000))
        self.dialog.show()
        window.statusBar().showMessage("Preparing the demo study…")

    def _cancel(self) -> None:
        """Stop rendering; what was made stays cached and the rest is made when a reader reaches it."""
        for task in (self.task, self.rest):
            if task is not None:
                task.cancel()
        self.dialog.hide()

    def _progress(self, done: int, total: int, _message: str) -> None:
        self.dialog.setMaximum(total)
        self.dialog.setValue(done)
        if self.window.mode() != "reader":  # reader mode stays quiet (see app.main_window)
            self.window.statusBar().showMessage(f"Preparing the demo study: {done} of {total} images")

    def _failed(self, message: str) -> None:
        from app.qt_util import show_error

        self.dialog.hide()
        self.window.statusBar().showMessage(message)
        show_error(self.window, f"The demo study could not be built: {message}")

    def _rest_done(self, _info: DemoInfo) -> None:
        self.dialog.hide()
        self.window.statusBar().showMessage("All demo films are ready", 8000)

    def _ready(self, info: DemoInfo) -> None:
        self.info = info
        self.dialog.setLabelText("Preparing the other films in the background (you can start reading now)…")
        self.rest = workers.submit(build_demo_task(self.database), owner=self, name="Preparing the demo films",
                                   progress=self._progress, done=self._rest_done, failed=self._failed)
        self.window.statusBar().showMessage(f"{info.study}: the first cases are ready", 8000)
        self.window.open_paths([info.images])
        self.window.set_mode("admin")
        self.window.page("admin").select_study_named(info.study)
        self.welcome = WelcomeDialog(info, self.window)
        self.welcome.viewer_button.clicked.connect(lambda: self._go("viewer"))
        self.welcome.reader_button.clicked.connect(lambda: self._go("reader"))
        self.welcome.admin_button.clicked.connect(lambda: self._go("admin"))
        self.welcome.show()

    def _go(self, mode: str) -> None:
        if self.welcome is not None:
            self.welcome.close()
        if mode == "reader" and self.info is not None:
            self.window.open_reader_named(self.info.study, self.info.readers[0])
        else:
            self.window.set_mode(mode)


def build_demo_task(database: str | None, first_only: bool = False):
    def run(ctx: workers.TaskContext) -> DemoInfo:
        return build_demo(database, progress=lambda d, t: ctx.progress(d, t), cancelled=ctx.cancelled,
                          first_only=first_only)

    return run


def build_demo_cli(database: str | None) -> int:
    """``r2c-review demo --no-gui``: build, print where it is."""
    def progress(done: int, total: int) -> None:
        print(f"\rpreparing images: {done}/{total}", end="", file=sys.stderr, flush=True)

    info = build_demo(database, progress=progress)
    print(file=sys.stderr)
    print(info.summary(database))
    return 0

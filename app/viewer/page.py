"""The viewer page: selected files side by side (or an original and its restorations), tools, info.

Files load in workers through the shared cache; the page shows a pane per image, links
them (zoom/pan and window, each unlinkable), and offers fit / 1:1 / reset / invert,
window presets of the current pane (number keys 1-9), flicker between the first two panes,
and a toggle for the patient's direct identifiers in the info panel. That toggle is
remembered per context: shown by default for clinical viewing, hidden by default on study
and teaching screens, which others watch. The layout (image/side-panel split, link toggles)
is remembered across restarts (``save_layout``/``restore_layout``, called by the main window).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMenu,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import settings, workers
from app.images import CACHE
from app.qt_util import show_error
from app.viewer.compare import ComparePanel
from app.viewer.grid import PaneGrid
from app.viewer.info import InfoPanel
from app.viewer.link import LinkGroup
from app.viewer.pane import ImagePane
from app.viewer.state import PaneImage, ViewState

if TYPE_CHECKING:
    from core.imaging import XRay

MAX_PANES = 6
PRESET_KEYS = 9  # keys 1-9
CLINICAL, STUDY, TEACHING = "clinical", "study", "teaching"
IDENTIFIERS_KEY = "viewer/show_identifiers/{}"
SPLITTER_KEY, LINKS_KEY = "viewer/splitter", "viewer/links"
HINT = ("Open X-ray files or a folder (File ▸ Open), or drop them here.\n"
        "Select several files in the list to see them side by side.")


def _load_all(paths: list[Path], ctx: workers.TaskContext) -> tuple[list[XRay], list[str]]:
    from core.errors import ImageLoadError

    xrays, problems = [], []
    for i, p in enumerate(paths):
        ctx.check()
        ctx.progress(i, len(paths), f"Loading {p.name}…")
        try:
            xrays.append(CACHE.load(p))
        except ImageLoadError as exc:
            problems.append(exc.one_line())
    return xrays, problems


class ViewerPage(QWidget):
    """See the module docstring."""

    status = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._paths: list[Path] = []
        self._xrays: list[XRay] = []
        self._load_task: workers.Task | None = None
        self._shown_key: tuple = ()
        self._current: ImagePane | None = None
        self.link = LinkGroup(self)
        self._context = CLINICAL
        self._build()
        self.set_context(CLINICAL)

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toolbar = QToolBar("Viewer tools")
        layout.addWidget(self.toolbar)
        self._make_actions()

        self.grid = PaneGrid(show_info=True)
        self.grid.paneClicked.connect(self._pane_clicked)
        self.hint = QLabel(HINT)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setObjectName("viewerHint")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.grid)

        self.info = InfoPanel()
        self.compare = ComparePanel()
        self.compare.panesChanged.connect(self._refresh)
        self.compare.opacityChanged.connect(lambda o: [p.set_overlay_opacity(o) for p in self.grid.panes()])
        self.compare.status.connect(self.status)
        self.side = QTabWidget()
        self.side.addTab(self.info, "Image")
        self.side.addTab(self.compare, "Compare")
        self.side.currentChanged.connect(lambda i: self.compare_action.setChecked(self.side.widget(i) is self.compare))

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("viewerSplitter")
        splitter.addWidget(self.stack)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([900, 300])
        layout.addWidget(splitter, 1)
        self.splitter = splitter

    def _action(self, text: str, tip: str, slot, shortcut: str | None = None, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
        action.setCheckable(checkable)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)
        self.toolbar.addAction(action)
        return action

    def _make_actions(self) -> None:
        self.fit_action = self._action("Fit", "Fit the image to the pane", lambda: self._each("fit"), "F")
        self.one_action = self._action("1:1", "One image pixel per screen pixel", lambda: self._each("one_to_one"),
                                       "Ctrl+1")
        self.reset_action = self._action("Reset", "Reset zoom, pan, window and inversion",
                                         lambda: self._each("reset"), "Space")
        self.invert_action = self._action("Invert", "Swap black and white", lambda: self._each("toggle_invert"),
                                          "I")
        self.presets_button = QToolButton()
        self.presets_button.setText("Window")
        self.presets_button.setToolTip("Window presets of the current image")
        self.presets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.presets_menu = QMenu(self)
        self.presets_menu.aboutToShow.connect(self._fill_presets)
        self.presets_button.setMenu(self.presets_menu)
        self.toolbar.addWidget(self.presets_button)
        # Number keys pick presets in menu order: 1 the film's default, 2-4 lung, mediastinum, bone.
        self.preset_actions: list[QAction] = []
        for i in range(PRESET_KEYS):
            action = QAction(f"Window preset {i + 1}", self)
            action.setShortcut(QKeySequence(str(i + 1)))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(lambda _c=False, i=i: self.apply_preset(i))
            self.addAction(action)
            self.preset_actions.append(action)
        self.toolbar.addSeparator()
        self.link_geometry_action = self._action("Link zoom", "Zoom and pan all panes together", self._set_links,
                                                 checkable=True)
        self.link_window_action = self._action("Link window", "Window/level and invert all panes together",
                                               self._set_links, checkable=True)
        self.link_geometry_action.setChecked(True)
        self.link_window_action.setChecked(True)
        self.flicker_action = self._action("Flicker", "Alternate the first two panes in one place",
                                           self._set_flicker, "X", checkable=True)
        self.identifiers_action = self._action(
            "IDs", "Show the patient's name, ID, birth date and accession number", self._set_identifiers,
            checkable=True)
        self.toolbar.addSeparator()
        self.compare_action = self._action("Compare", "Show the original beside its restorations",
                                           self.set_compare, "C", checkable=True)
        self.synthesize_action = self._action(
            "Synthesize…", "Make a synthetic COVID-19-like film from this (normal) film with the pix2pix "
            "synthesizer, for real-or-synthetic reader studies only; the file is marked SYNTHETIC",
            self.synthesize_current)

    def _each(self, method: str) -> None:
        """Apply a pane command to the current pane (linked panes follow) or all when unlinked."""
        panes = self.grid.panes()
        if not panes:
            return
        if self.link.link_geometry and self.link.link_window:
            getattr(self.current_pane(), method)()
        else:
            for pane in panes:
                getattr(pane, method)()

    def _fill_presets(self) -> None:
        self.presets_menu.clear()
        pane = self.current_pane()
        image = pane.image() if pane else None
        if image is None:
            self.presets_menu.addAction("No image").setEnabled(False)
            return
        from core.imaging.presets import window_label

        for i, w in enumerate(image.windows):
            label = f"{w.name or f'Window {i + 1}'}  ({window_label(w)})"
            if i < PRESET_KEYS:
                label += f"\t{i + 1}"  # the key, shown in the shortcut column
            act = self.presets_menu.addAction(label)
            act.setCheckable(True)
            act.setChecked(pane.state().preset == i and not pane.state().touched)
            act.triggered.connect(lambda _c=False, i=i, p=pane: p.apply_preset(i))

    def context(self) -> str:
        return self._context

    def save_layout(self) -> None:
        settings.set_bytes(SPLITTER_KEY, self.splitter.saveState())
        settings.set_value(LINKS_KEY, f"{int(self.link_geometry_action.isChecked())}"
                                      f"{int(self.link_window_action.isChecked())}")

    def restore_layout(self) -> None:
        state = settings.value_bytes(SPLITTER_KEY)
        if state is not None:
            self.splitter.restoreState(state)
        links = settings.value(LINKS_KEY)
        if len(links) == 2 and set(links) <= {"0", "1"}:
            self.link_geometry_action.setChecked(links[0] == "1")
            self.link_window_action.setChecked(links[1] == "1")

    def set_context(self, context: str) -> None:
        """Clinical, study or teaching: picks the remembered identifier setting (hidden unless clinical)."""
        self._context = context
        default = "1" if context == CLINICAL else "0"
        show = settings.value(IDENTIFIERS_KEY.format(context), default) == "1"
        self.identifiers_action.blockSignals(True)  # a context change is not the user's choice to store
        self.identifiers_action.setChecked(show)
        self.identifiers_action.blockSignals(False)
        self.info.set_show_identifiers(show)

    def _set_identifiers(self, show: bool) -> None:
        settings.set_value(IDENTIFIERS_KEY.format(self._context), "1" if show else "0")
        self.info.set_show_identifiers(show)

    def apply_preset(self, index: int) -> None:
        """Preset ``index`` on the current pane (linked panes take their own preset of that index)."""
        panes = self.grid.panes()
        if not panes:
            return
        for pane in [self.current_pane()] if self.link.link_window else panes:
            pane.apply_preset(index)

    def _set_links(self, _on: bool = False) -> None:
        self.link.set_linked(self.link_geometry_action.isChecked(), self.link_window_action.isChecked())

    def _set_flicker(self, on: bool) -> None:
        if on and len(self.grid.panes()) < 2:
            self.status.emit("Flicker needs two images: select two files, or compare with a restoration")
            self.flicker_action.setChecked(False)
            return
        self.grid.set_flicker(on)

    # -- content ---------------------------------------------------------------------------

    def current_pane(self) -> ImagePane | None:
        panes = self.grid.panes()
        if self._current in panes:
            return self._current
        return panes[0] if panes else None

    def current_xray(self) -> XRay | None:
        return self._xrays[0] if self._xrays else None

    def xrays(self) -> list[XRay]:
        return list(self._xrays)

    def show_files(self, paths: list[Path]) -> None:
        """Load and show up to MAX_PANES files side by side (in a worker)."""
        paths = [Path(p) for p in paths][:MAX_PANES]
        if paths == self._paths and self._xrays:
            return
        self._paths = paths
        if self._load_task is not None:
            self._load_task.cancel()
        if not paths:
            self._loaded([], [])
            return
        self._load_task = workers.submit(lambda ctx: _load_all(paths, ctx), owner=self, name="Loading images",
                                         priority=2, done=lambda res: self._loaded(*res),
                                         failed=lambda m: show_error(self, m), progress=self._progress)

    def _progress(self, _done: int, _total: int, message: str) -> None:
        if message:
            self.status.emit(message)

    def _loaded(self, xrays: list[XRay], problems: list[str]) -> None:
        self._load_task = None
        self._xrays = xrays
        if problems:
            self.status.emit(problems[0])
            show_error(self, "\n".join(problems))
        elif xrays:
            self.status.emit(f"{len(xrays)} image(s) shown" if len(xrays) > 1 else str(xrays[0].source.name))
        self.compare.set_source(xrays[0] if xrays else None)
        if self.compare_action.isChecked():
            self.compare.run()
        self._refresh()

    def set_compare(self, on: bool) -> None:
        if self.compare_action.isChecked() != on:
            self.compare_action.setChecked(on)  # re-enters through toggled
            return
        if on:
            self.side.setCurrentWidget(self.compare)
            self.compare.refresh_variants()
            self.compare.set_source(self.current_xray())
            self.compare.run()
        elif self.side.currentWidget() is self.compare:
            self.side.setCurrentWidget(self.info)
        self._refresh()

    def synthesize_current(self, _checked: bool = False, out_dir: Path | None = None) -> workers.Task | None:
        """Write a synthetic film of the current film (PNG named and tagged SYNTHETIC, see
        core/exports/synthetic.py) into a folder the user picks, then show it beside its source."""
        xray = self.current_xray()
        if xray is None:
            self.status.emit("Open a film first: the synthesizer makes a synthetic film from a normal one")
            return None
        if out_dir is None:
            from PySide6.QtWidgets import QFileDialog

            chosen = QFileDialog.getExistingDirectory(self, "Folder for the synthetic film (marked SYNTHETIC)")
            if not chosen:
                return None
            out_dir = Path(chosen)
        source = xray.source

        def run(_ctx: workers.TaskContext) -> Path:
            from core.exports.synthetic import synthetic_name, write_synthetic_png
            from core.synthesize import Synthesizer

            synth = Synthesizer.load()
            return write_synthetic_png(out_dir / synthetic_name(source, ".png"), synth.synthesize(xray.display),
                                       synth.describe(source.name))

        def done(path: Path) -> None:
            self.status.emit(f"Synthetic film written: {path.name} (SYNTHETIC — research use only, not a real film)")
            self.show_files([source, path])

        return workers.submit(run, owner=self, name="Synthesizing", done=done, failed=lambda m: show_error(self, m))

    def in_compare(self) -> bool:
        return self.compare_action.isChecked()

    def pane_items(self) -> list[tuple[str, PaneImage]]:
        if self.in_compare():
            return self.compare.pane_items()
        return [(x.source.name, PaneImage.from_xray(x)) for x in self._xrays]

    def _refresh(self) -> None:
        items = self.pane_items()
        key = (self.in_compare(), tuple(id(x) for x in self._xrays))
        self.stack.setCurrentWidget(self.grid if items else self.hint)
        old_state = self.grid.panes()[0].state() if self.grid.panes() else ViewState()
        fresh = key != self._shown_key
        self._shown_key = key
        self.link.clear()
        if items:
            self.grid.set_aspect(max(img.width / img.height for _, img in items))
        panes = self.grid.set_count(len(items))
        opacity = self.compare.overlay_opacity()
        for pane, (caption, image) in zip(panes, items, strict=True):
            pane.set_caption(caption)
            pane.set_image(image, reset=fresh)
            if not fresh:
                pane.set_state(old_state)
            pane.set_overlay_opacity(opacity)
            self.link.add(pane)
        if len(panes) < 2 and self.flicker_action.isChecked():
            self.flicker_action.setChecked(False)
        self.info.set_xray(self.current_xray())

    def _pane_clicked(self, pane: ImagePane) -> None:
        self._current = pane
        index = self.grid.panes().index(pane)
        if not self.in_compare() and index < len(self._xrays):
            self.info.set_xray(self._xrays[index])

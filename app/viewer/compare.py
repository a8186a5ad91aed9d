"""Compare mode: the original beside its restorations by chosen R2C-GAN variants.

Shows each generator's COVID-19 probability, optional lung overlays with their areas, and
exports a restoration as PNG or DICOM Secondary Capture. All inference runs in workers;
missing weights are reported in the panel in one line, and the rest keeps working.

Results stream: each variant's restoration is published by the worker the moment it is done
and shown at once (a pane, a table row with its full name), the rows still to come say
"waiting" or "restoring…", and Cancel keeps what is done. The lung overlay streams the same
way, one image at a time, keyed by the very image array it was computed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
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
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import engine, settings, workers
from app.viewer.state import PaneImage

if TYPE_CHECKING:
    from core.classifier_display import ProbabilityDisplay
    from core.exports import RestoredImage
    from core.imaging import XRay
    from core.restore import Restoration
    from core.segment import Segmentation

MAX_ITERATIONS = 10  # as core.restore.MAX_ITERATIONS (not imported: it pulls in torch)
PASSES_KEY = "compare/passes"  # 0: the model's default
SHOW_UNRELIABLE_KEY = "compare/show_unreliable_probability"  # "1": show probabilities below the AUC bar too
RESOLUTIONS = (("native", "Native (the film's own pixels)"), ("model", "Model resolution (256 px)"))


@dataclass
class CompareResult:
    """One variant's restoration of the current original."""

    variant_id: str
    name: str
    restoration: Restoration
    display: np.ndarray  # the final pass at the film's own resolution (guided upsampling, core.guided)
    model_display: np.ndarray  # the final pass at 256 px, resized to the film's size for linked viewing
    provenance: dict[str, Any] | None = None  # the model manifest's provenance: the head's measured AUC

    def pixels(self, resolution: str) -> np.ndarray:
        """What a pane shows: the native restoration, or the model-resolution one ("model")."""
        return self.model_display if resolution == "model" else self.display

    @property
    def iterations(self) -> int:
        return self.restoration.iterations

    @property
    def covid_probability(self) -> float:
        return self.restoration.covid_probability

    def probability(self, show_unreliable: bool) -> ProbabilityDisplay:
        """The probability as it may be shown (core.classifier_display: measured AUC, or withheld)."""
        from core.classifier_display import probability_display

        return probability_display(self.covid_probability, self.provenance, show_unreliable)

    @property
    def caption(self) -> str:
        return f"{self.name} ×{self.iterations}"


def _restore_all(xray: XRay, variants: list[tuple[str, str]], iterations: int | None,
                 ctx: workers.TaskContext) -> list[CompareResult]:
    """Worker: run each chosen variant on the original's display image, then carry it to the film's pixels.

    Publishes ("started", variant id) and ("done", CompareResult) as it goes, so the panel shows
    each variant the moment it is ready; progress counts two steps per variant."""
    from core.guided import native_restoration
    from core.restore import resize_to

    restorer = engine.restorer()
    results = []
    steps = 2 * len(variants)
    for i, (vid, name) in enumerate(variants):
        ctx.check()
        ctx.publish(("started", vid))
        ctx.progress(2 * i, steps, f"Restoring with {name}…")
        restoration = restorer.restore_many([xray.display], vid, iterations, cancelled=ctx.cancelled)[0]
        ctx.check()
        ctx.progress(2 * i + 1, steps, f"{name}: carrying the restoration to the film's pixels…")
        result = CompareResult(vid, name, restoration, native_restoration(xray.display, restoration.final),
                               resize_to(restoration.final, xray.size), restorer.generator(vid).manifest.provenance)
        results.append(result)
        ctx.publish(("done", result))
    ctx.progress(steps, steps, "")
    return results


def _segment_each(images: list[np.ndarray], spacing: tuple[float, float] | None, ctx: workers.TaskContext) -> None:
    """Worker: segment the images one by one, publishing (image, Segmentation) as each is done."""
    segmenter = engine.segmenter()
    for i, image in enumerate(images):
        ctx.check()
        ctx.progress(i, len(images), "Segmenting lungs…")
        ctx.publish((image, segmenter.segment_many([image], [spacing])[0]))


class ComparePanel(QWidget):
    """Controls and results of compare mode; the viewer shows :meth:`pane_items`."""

    panesChanged = Signal()
    opacityChanged = Signal(float)
    status = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._xray: XRay | None = None
        self._results: list[CompareResult] = []
        self._cache: dict[tuple[str, str, int | None], CompareResult] = {}
        self._pending: dict[str, tuple[str, str]] = {}  # variant id -> (name, "waiting" | "restoring…" | ...)
        self._segs: dict[int, tuple[np.ndarray, Segmentation]] = {}  # id(image) -> (that image, its lungs)
        self._seg_again = False  # images arrived while segmenting: segment those too when it ends
        self._seg_file: tuple[str, np.ndarray] | None = None  # (source path, mask) from an opened DICOM SEG
        self._task: workers.Task | None = None
        self._seg_task: workers.Task | None = None
        self._build()
        self.refresh_variants()

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        box = QGroupBox("Restoration")
        form = QVBoxLayout(box)
        self.missing_label = QLabel()
        self.missing_label.setWordWrap(True)
        self.missing_label.setObjectName("missingWeights")
        form.addWidget(self.missing_label)
        self.variant_list = QListWidget()
        self.variant_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.variant_list.setMaximumHeight(130)
        self.variant_list.itemChanged.connect(lambda _item: self._variants_changed())
        form.addWidget(self.variant_list)
        row = QHBoxLayout()
        row.addWidget(QLabel("Passes:"))
        self.iterations = QSpinBox()
        self.iterations.setRange(0, MAX_ITERATIONS)
        self.iterations.setSpecialValueText("model default")
        self.iterations.setToolTip("How many times the generator is applied (x → G(x) → G(G(x)) …)")
        saved = settings.value(PASSES_KEY)
        self.iterations.setValue(int(saved) if saved.isdigit() else 0)  # remembered across restarts
        self.iterations.valueChanged.connect(lambda v: settings.set_value(PASSES_KEY, str(v)))
        self.iterations.valueChanged.connect(lambda _v: self._variants_changed())
        row.addWidget(self.iterations, 1)
        form.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show:"))
        self.resolution_choice = QComboBox()
        for key, text in RESOLUTIONS:
            self.resolution_choice.addItem(text, key)
        self.resolution_choice.setToolTip("Native: the generator's change carried to every pixel of the film "
                                          "(guided upsampling). Model resolution: the generator's 256-px output, "
                                          "enlarged. Exports follow this choice.")
        self.resolution_choice.currentIndexChanged.connect(lambda _i: self._resolution_changed())
        row.addWidget(self.resolution_choice, 1)
        form.addLayout(row)
        row = QHBoxLayout()
        self.restore_button = QPushButton("Restore")
        self.restore_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        row.addWidget(self.restore_button)
        row.addWidget(self.cancel_button)
        form.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        form.addWidget(self.progress)
        layout.addWidget(box)

        self.unreliable_check = QCheckBox("Show COVID-19 probabilities below AUC 0.75")
        self.unreliable_check.setToolTip(
            "A variant's COVID-19 probability is shown only when its head reached an AUC of at least 0.75 on "
            "films from hospitals it never trained on; tick to see the others too. Research use, not for diagnosis.")
        self.unreliable_check.setChecked(settings.value(SHOW_UNRELIABLE_KEY) == "1")
        self.unreliable_check.toggled.connect(self._unreliable_toggled)
        layout.addWidget(self.unreliable_check)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("compareResults")
        self.table.setHorizontalHeaderLabels(["Image", "P(COVID-19)", "Lungs"])
        self.table.verticalHeader().setVisible(False)
        # Full variant names: wrapped, never elided ("R2C-GAN ..."), columns resizable by the user.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(220)
        layout.addWidget(self.table)

        box = QGroupBox("Lung segmentation")
        form2 = QFormLayout(box)
        self.overlay_check = QCheckBox("Show lung overlay")
        self.overlay_check.toggled.connect(self._overlay_toggled)
        form2.addRow(self.overlay_check)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(35)
        self.opacity.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100.0))
        form2.addRow("Opacity", self.opacity)
        self.seg_label = QLabel()
        self.seg_label.setWordWrap(True)
        form2.addRow(self.seg_label)
        seg_buttons = QHBoxLayout()
        self.seg_open_button = QPushButton("Open DICOM SEG…")
        self.seg_open_button.setToolTip("Show a lung mask stored as DICOM Segmentation over the film it references")
        self.seg_open_button.clicked.connect(self._open_seg_dialog)
        self.seg_export_button = QPushButton("Save mask as DICOM SEG…")
        self.seg_export_button.setToolTip("The original's lung mask as a DICOM Segmentation referencing the film "
                                          "(for a PACS or OHIF); needs a DICOM original")
        self.seg_export_button.clicked.connect(self._export_seg_dialog)
        seg_buttons.addWidget(self.seg_open_button)
        seg_buttons.addWidget(self.seg_export_button)
        form2.addRow(seg_buttons)
        layout.addWidget(box)

        box = QGroupBox("Export restored image")
        row3 = QVBoxLayout(box)
        self.export_choice = QComboBox()
        row3.addWidget(self.export_choice)
        buttons = QHBoxLayout()
        self.png_button = QPushButton("PNG…")
        self.png_button.clicked.connect(lambda: self._export_dialog("png"))
        self.dicom_button = QPushButton("DICOM…")
        self.dicom_button.setToolTip("DICOM Secondary Capture, marked DERIVED, with the source's patient data")
        self.dicom_button.clicked.connect(lambda: self._export_dialog("dcm"))
        buttons.addWidget(self.png_button)
        buttons.addWidget(self.dicom_button)
        row3.addLayout(buttons)
        self.bits16 = QCheckBox("16 bits per pixel (else 8)")
        self.bits16.setToolTip("Bit depth of the exported PNG or DICOM; the film's size and aspect ratio are kept")
        row3.addWidget(self.bits16)
        layout.addWidget(box)
        layout.addStretch(1)
        self._update_export()

    # -- variants --------------------------------------------------------------------------

    def refresh_variants(self) -> None:
        """List the variants, enabling those with installed weights (a few file checks)."""
        from core.variants import VARIANTS, weights_path

        checked = set(self.checked_variants()) or {"r2c-q1"}
        self.variant_list.blockSignals(True)
        self.variant_list.clear()
        missing = []
        for v in VARIANTS.values():
            installed = weights_path(v.id) is not None
            item = QListWidgetItem(v.display_name if installed else f"{v.display_name} (not installed)")
            item.setData(Qt.ItemDataRole.UserRole, v.id)
            enabled = Qt.ItemFlag.ItemIsEnabled if installed else Qt.ItemFlag.NoItemFlags
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | enabled)
            item.setCheckState(Qt.CheckState.Checked if installed and v.id in checked else Qt.CheckState.Unchecked)
            if not installed:
                missing.append(v.display_name)
            self.variant_list.addItem(item)
        self.variant_list.blockSignals(False)
        if len(missing) == len(VARIANTS):
            self.missing_label.setText(
                "No trained generators are installed, so restoration is unavailable. Train them "
                "(r2c-review train), import the authors' checkpoints (r2c-review import-tf), "
                "or point R2C_MODELS_DIR at a folder of model files.")
        elif missing:
            self.missing_label.setText(f"Not installed: {', '.join(missing)}.")
        else:
            self.missing_label.setText("")
        self.missing_label.setVisible(bool(missing))
        self._update_buttons()

    def checked_variants(self) -> list[str]:
        return [self.variant_list.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.variant_list.count())
                if self.variant_list.item(i).checkState() == Qt.CheckState.Checked]

    def set_checked_variants(self, ids: list[str]) -> None:
        for i in range(self.variant_list.count()):
            item = self.variant_list.item(i)
            wanted = item.data(Qt.ItemDataRole.UserRole) in ids and bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)

    def _variants_changed(self) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self._task is not None
        self.restore_button.setEnabled(not running and self._xray is not None and bool(self.checked_variants()))
        self.cancel_button.setEnabled(running)

    # -- source and results ----------------------------------------------------------------

    def set_source(self, xray: XRay | None) -> None:
        """The original to compare; restorations already computed for it are reused."""
        if xray is self._xray:
            return
        self.cancel()
        self._pending = {}
        self._xray = xray
        self._results = []
        if xray is not None:
            self._results = [r for key, r in self._cache.items() if key[0] == str(xray.source)
                             and key[1] in self.checked_variants() and key[2] == self._iterations()]
        self._show_results()
        self._update_buttons()
        if xray is not None and self.overlay_check.isChecked():
            self._segment()

    def source(self) -> XRay | None:
        return self._xray

    def results(self) -> list[CompareResult]:
        return list(self._results)

    def segmentations(self) -> list[Segmentation] | None:
        """The lungs of every pane (original first), once all are segmented; else None."""
        segs = [self._seg_of(image) for image in self._images()]
        return segs if segs and all(s is not None for s in segs) else None  # type: ignore[return-value]

    def pending(self) -> dict[str, str]:
        """Variant id -> state of the restorations not shown yet ("waiting", "restoring…", "cancelled")."""
        return {vid: state for vid, (_name, state) in self._pending.items()}

    def _images(self) -> list[np.ndarray]:
        if self._xray is None:
            return []
        return [self._xray.display] + [r.pixels(self.resolution()) for r in self._results]

    def _seg_of(self, image: np.ndarray) -> Segmentation | None:
        entry = self._segs.get(id(image))
        return entry[1] if entry is not None and entry[0] is image else None

    def _iterations(self) -> int | None:
        return self.iterations.value() or None

    def resolution(self) -> str:
        """"native" (default) or "model": how restorations are shown and exported."""
        return self.resolution_choice.currentData() or "native"

    def set_resolution(self, resolution: str) -> None:
        self.resolution_choice.setCurrentIndex(max(0, self.resolution_choice.findData(resolution)))

    def _resolution_changed(self) -> None:
        self._show_results()
        if self._xray is not None and self.overlay_check.isChecked():
            self._segment()

    def pane_items(self) -> list[tuple[str, PaneImage]]:
        """(caption, image) for the original then each restoration, masks attached if shown."""
        if self._xray is None:
            return []
        items = [("Original", PaneImage.from_xray(self._xray))]
        show = self.unreliable_check.isChecked()
        for r in self._results:
            items.append((f"{r.caption} · {r.probability(show).text}",
                          PaneImage.from_display(r.pixels(self.resolution()), self._xray.pixel_spacing)))
        segs = [self._seg_of(image) for image in self._images()] if self.overlay_check.isChecked() else []
        if any(s is not None for s in segs):  # streamed: each pane gets its overlay as soon as it is segmented
            items = [(c, img.with_overlay(s.mask) if s is not None else img)
                     for (c, img), s in zip(items, segs, strict=True)]
        elif self._seg_file is not None and self._seg_file[0] == str(self._xray.source):
            caption, image = items[0]
            items[0] = (f"{caption} · DICOM SEG", image.with_overlay(self._seg_file[1]))
        return items

    def overlay_opacity(self) -> float:
        return self.opacity.value() / 100.0

    def run(self) -> None:
        """Restore the original with every checked variant (cached results are reused)."""
        from core.variants import VARIANTS

        if self._xray is None or self._task is not None:
            return
        xray, iterations = self._xray, self._iterations()
        chosen = [(vid, VARIANTS[vid].display_name) for vid in self.checked_variants()]
        todo = [c for c in chosen if (str(xray.source), c[0], iterations) not in self._cache]
        if not todo:
            self._finish(xray, iterations, chosen, [])
            return
        self.progress.setRange(0, 2 * len(todo))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._pending = {vid: (name, "waiting") for vid, name in todo}
        self._task = workers.submit(
            lambda ctx: _restore_all(xray, todo, iterations, ctx),
            owner=self, name="Restoration", priority=1,
            done=lambda res: self._finish(xray, iterations, chosen, res),
            failed=self._failed, cancelled=self._cancelled, progress=self._progress,
            partial=lambda item: self._streamed(xray, iterations, chosen, item),
        )
        self._shown(xray, iterations, chosen)  # the cached ones at once, the rest as "waiting"
        self._update_buttons()

    def cancel(self) -> None:
        """Stop restoring; what is done stays shown (and cached), the rest is marked cancelled."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.progress.setVisible(False)
            self._pending = {vid: (name, "cancelled") for vid, (name, _state) in self._pending.items()}
            self._show_results()
            self.status.emit("Restoration cancelled")
            self._update_buttons()

    def _streamed(self, xray: XRay, iterations: int | None, chosen: list[tuple[str, str]], item: object) -> None:
        """One variant started or finished in the worker: show it now."""
        kind, payload = item  # type: ignore[misc]
        if kind == "started":
            if payload in self._pending:
                self._pending[payload] = (self._pending[payload][0], "restoring…")
        else:
            result: CompareResult = payload
            self._cache[(str(xray.source), result.variant_id, iterations)] = result
            self._pending.pop(result.variant_id, None)
        if xray is self._xray:
            self._shown(xray, iterations, chosen)

    def _shown(self, xray: XRay, iterations: int | None, chosen: list[tuple[str, str]]) -> None:
        self._results = [self._cache[key] for vid, _ in chosen
                         if (key := (str(xray.source), vid, iterations)) in self._cache]
        self._show_results()
        if self.overlay_check.isChecked():
            self._segment()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if message:
            self.status.emit(message)

    def _finish(self, xray: XRay, iterations: int | None, chosen: list[tuple[str, str]],
                new: list[CompareResult]) -> None:
        self._task = None
        self._pending = {}
        self.progress.setVisible(False)
        for r in new:
            self._cache[(str(xray.source), r.variant_id, iterations)] = r
        self._evict(keep=str(xray.source))
        if xray is self._xray:
            self._shown(xray, iterations, chosen)
            self.status.emit(f"Restored with {len(self._results)} model(s)")
        self._update_buttons()

    def _evict(self, keep: str, sources: int = 3) -> None:
        """Keep restorations of the last few originals only (full-size images add up quickly)."""
        recent: list[str] = []
        for key in reversed(list(self._cache)):
            if key[0] not in recent:
                recent.append(key[0])
        wanted = {keep, *recent[:sources]}
        for key in [k for k in self._cache if k[0] not in wanted]:
            del self._cache[key]

    def _failed(self, message: str) -> None:
        self._task = None
        self._pending = {}
        self.progress.setVisible(False)
        self._show_results()
        self.status.emit(message)
        self._update_buttons()
        from app.qt_util import show_error

        show_error(self, message)

    def _cancelled(self) -> None:
        self._task = None
        self._update_buttons()

    def _unreliable_toggled(self, on: bool) -> None:
        settings.set_value(SHOW_UNRELIABLE_KEY, "1" if on else "0")
        self._show_results()

    def _show_results(self) -> None:
        rows: list[tuple[str, str, str]] = []
        tips: dict[tuple[int, int], str] = {}
        if self._xray is not None:
            images = self._images()
            show = self.unreliable_check.isChecked()
            rows.append(("Original", "–", self._area_text(images[0])))
            for r, image in zip(self._results, images[1:], strict=True):
                shown = r.probability(show)
                tips[(len(rows), 1)] = shown.detail  # the measured AUC and the research-use note
                rows.append((r.caption, shown.text, self._area_text(image)))
            rows += [(name, state, "") for name, state in self._pending.values()]
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(tips.get((i, j), text))  # the full text, whatever the column width
                self.table.setItem(i, j, item)
        self._update_export()
        self.panesChanged.emit()

    def _area_text(self, image: np.ndarray) -> str:
        seg = self._seg_of(image)
        if seg is None:
            return ""
        a = seg.areas
        text = f"{a.fraction:.1%}"
        if a.total_mm2 is not None:
            text += f" · {a.total_mm2 / 100:.0f} cm²"
        return text

    # -- lungs -----------------------------------------------------------------------------

    def _overlay_toggled(self, on: bool) -> None:
        if on:
            self._segment()
        self.panesChanged.emit()

    def _segment(self) -> None:
        """Segment the shown images that have no lungs yet, one by one (each overlay appears when done)."""
        if self._xray is None:
            return
        if self._seg_task is not None:  # one at a time: the running task's end picks up the newcomers
            self._seg_again = True
            return
        missing = [image for image in self._images() if self._seg_of(image) is None]
        if not missing:
            return
        xray = self._xray
        self.seg_label.setText(f"Segmenting lungs… ({len(missing)} image(s))")
        self._seg_task = workers.submit(
            lambda ctx: _segment_each(missing, xray.pixel_spacing, ctx), owner=self, name="Lung segmentation",
            partial=lambda item: self._seg_streamed(xray, item), done=lambda _r: self._seg_done(),
            failed=self._seg_failed, cancelled=self._seg_done,
        )

    def _seg_streamed(self, xray: XRay, item: object) -> None:
        image, seg = item  # type: ignore[misc]
        self._segs[id(image)] = (image, seg)
        if xray is self._xray:
            self._show_results()

    def _seg_done(self) -> None:
        self._seg_task = None
        keep = {id(a) for a in self._images()} | {id(a) for r in self._cache.values()
                                                  for a in (r.display, r.model_display)}
        self._segs = {k: v for k, v in self._segs.items() if k in keep}  # forget the lungs of evicted images
        self.seg_label.setText("Areas are of the lung fields, as a share of the image (and in cm² when the "
                               "pixel spacing is known).")
        again, self._seg_again = self._seg_again, False
        if again and self.overlay_check.isChecked():
            self._segment()

    def _seg_failed(self, message: str) -> None:
        self._seg_task = None
        self._seg_again = False
        self.overlay_check.blockSignals(True)
        self.overlay_check.setChecked(False)
        self.overlay_check.blockSignals(False)
        self.seg_label.setText(f"Lung segmentation unavailable: {message}")
        self.status.emit(message)

    def _open_seg_dialog(self) -> None:
        if self._xray is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open DICOM Segmentation", str(self._xray.source.parent),
                                              "DICOM (*.dcm);;All files (*)")
        if path:
            self.open_segmentation(path)

    def open_segmentation(self, path: str | Path) -> workers.Task | None:
        """Overlay the lung mask of a DICOM SEG on the original, if the SEG references this very film."""
        xray = self._xray
        if xray is None:
            return None

        def load(_ctx: workers.TaskContext) -> tuple[np.ndarray, str]:
            from core.exports import read_dicom_seg

            return read_dicom_seg(path)

        def loaded(result: tuple[np.ndarray, str]) -> None:
            mask, uid = result
            if xray is not self._xray:
                return
            name = Path(path).name
            if uid != xray.identifiers.sop_uid:
                self._failed(f"{path}: segments another image (SOP Instance UID {uid}), not {xray.source.name}")
            elif mask.shape != xray.display.shape:
                self._failed(f"{path}: mask is {mask.shape[1]} x {mask.shape[0]}, the film {xray.size[0]} x "
                             f"{xray.size[1]}")
            else:
                self._seg_file = (str(xray.source), mask)
                self.seg_label.setText(f"Lung mask from {name} shown on the original.")
                self.panesChanged.emit()

        return workers.submit(load, owner=self, name="Open DICOM SEG", done=loaded, failed=self._failed)

    def _export_seg_dialog(self) -> None:
        if self._xray is None or self._seg_of(self._xray.display) is None:
            return
        stem = self._xray.source.stem
        path, _ = QFileDialog.getSaveFileName(self, "Save lung mask as DICOM SEG",
                                              str(Path.home() / f"{stem}_lungs.seg.dcm"), "DICOM (*.dcm)")
        if path:
            self.export_segmentation(path)

    def export_segmentation(self, path: str | Path) -> workers.Task | None:
        """Write the original's lung mask (computed here) as a DICOM SEG referencing the film, in a worker."""
        seg = self._seg_of(self._xray.display) if self._xray is not None else None
        if self._xray is None or seg is None:
            return None
        from core.exports import write_dicom_seg

        xray, mask = self._xray, seg.mask
        manifest = getattr(engine.segmenter(), "manifest", None)
        version = f"sha256:{(getattr(manifest, 'sha256', None) or 'unknown')[:16]}"
        return workers.submit(lambda ctx: write_dicom_seg(path, mask, xray.source, version), owner=self,
                              name="Export DICOM SEG", done=lambda p: self.status.emit(f"Saved {p}"),
                              failed=self._failed)

    # -- export ----------------------------------------------------------------------------

    def _update_export(self) -> None:
        self.export_choice.clear()
        for r in self._results:
            self.export_choice.addItem(r.caption)
        has = bool(self._results)
        for w in (self.export_choice, self.png_button, self.dicom_button):
            w.setEnabled(has)
        dicom = self._xray is not None and bool(self._xray.identifiers.sop_uid)
        self.seg_open_button.setEnabled(dicom)
        self.seg_export_button.setEnabled(dicom and self._seg_of(self._xray.display) is not None)

    def restored_image(self, index: int) -> RestoredImage:
        """Restoration ``index`` as exported: at the film's size (native) or the model's 256 px (film's aspect)."""
        from core.exports import RestoredImage

        r, x = self._results[index], self._xray
        native = self.resolution() == "native"
        return RestoredImage.from_xray(x, r.display if native else r.restoration.final, r.variant_id, r.name,
                                       r.iterations, r.restoration.model_sha256, self.resolution())

    def _export_dialog(self, kind: str) -> None:
        index = self.export_choice.currentIndex()
        if index < 0 or self._xray is None:
            return
        r = self._results[index]
        stem = f"{self._xray.source.stem}_{r.variant_id}_x{r.iterations}"
        filt = "PNG image (*.png)" if kind == "png" else "DICOM (*.dcm)"
        path, _ = QFileDialog.getSaveFileName(self, "Export restored image", str(Path.home() / f"{stem}.{kind}"), filt)
        if path:
            self.export_to(path, index, kind)

    def export_to(self, path: str | Path, index: int, kind: str, bits: int | None = None) -> workers.Task:
        """Write restoration ``index`` to ``path`` as "png" or "dcm" in a worker (``bits``: the check box's)."""
        from core.exports import write_dicom_sc, write_png

        image = self.restored_image(index)
        bits = bits or (16 if self.bits16.isChecked() else 8)
        writer: Any = write_png if kind == "png" else write_dicom_sc
        return workers.submit(lambda ctx: writer(path, image, bits), owner=self, name="Export",
                              done=lambda p: self.status.emit(f"Saved {p}"), failed=self._failed)

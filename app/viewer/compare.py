"""Compare mode: the original beside its restorations by chosen R2C-GAN variants.

Shows each generator's COVID-19 probability, optional lung overlays with their areas, and
exports a restoration as PNG or DICOM Secondary Capture. All inference runs in workers;
missing weights are reported in the panel in one line, and the rest keeps working.
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

from app import engine, workers
from app.viewer.state import PaneImage

if TYPE_CHECKING:
    from core.exports import RestoredImage
    from core.imaging import XRay
    from core.restore import Restoration
    from core.segment import Segmentation

MAX_ITERATIONS = 10  # as core.restore.MAX_ITERATIONS (not imported: it pulls in torch)
RESOLUTIONS = (("native", "Native (the film's own pixels)"), ("model", "Model resolution (256 px)"))


@dataclass
class CompareResult:
    """One variant's restoration of the current original."""

    variant_id: str
    name: str
    restoration: Restoration
    display: np.ndarray  # the final pass at the film's own resolution (guided upsampling, core.guided)
    model_display: np.ndarray  # the final pass at 256 px, resized to the film's size for linked viewing

    def pixels(self, resolution: str) -> np.ndarray:
        """What a pane shows: the native restoration, or the model-resolution one ("model")."""
        return self.model_display if resolution == "model" else self.display

    @property
    def iterations(self) -> int:
        return self.restoration.iterations

    @property
    def covid_probability(self) -> float:
        return self.restoration.covid_probability

    @property
    def caption(self) -> str:
        return f"{self.name} ×{self.iterations}"


def _restore_all(xray: XRay, variants: list[tuple[str, str]], iterations: int | None,
                 ctx: workers.TaskContext) -> list[CompareResult]:
    """Worker: run each chosen variant on the original's display image, then carry it to the film's pixels."""
    from core.guided import native_restoration
    from core.restore import resize_to

    restorer = engine.restorer()
    results = []
    for i, (vid, name) in enumerate(variants):
        ctx.check()
        ctx.progress(i, len(variants), f"Restoring with {name}…")
        restoration = restorer.restore_many([xray.display], vid, iterations, cancelled=ctx.cancelled)[0]
        results.append(CompareResult(vid, name, restoration, native_restoration(xray.display, restoration.final),
                                     resize_to(restoration.final, xray.size)))
    ctx.progress(len(variants), len(variants), "")
    return results


def _segment_all(images: list[np.ndarray], spacing: tuple[float, float] | None,
                 ctx: workers.TaskContext) -> list[Segmentation]:
    ctx.progress(0, 1, "Segmenting lungs…")
    return engine.segmenter().segment_many(images, [spacing] * len(images))


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
        self._masks: dict[int, list[np.ndarray]] = {}  # id(xray) -> masks (original first, then results)
        self._segmentations: list[Segmentation] | None = None
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

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Image", "P(COVID-19)", "Lungs"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(170)
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
        self._xray = xray
        self._segmentations = None
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
        return self._segmentations

    def _iterations(self) -> int | None:
        return self.iterations.value() or None

    def resolution(self) -> str:
        """"native" (default) or "model": how restorations are shown and exported."""
        return self.resolution_choice.currentData() or "native"

    def set_resolution(self, resolution: str) -> None:
        self.resolution_choice.setCurrentIndex(max(0, self.resolution_choice.findData(resolution)))

    def _resolution_changed(self) -> None:
        self._segmentations = None
        self._show_results()
        if self._xray is not None and self.overlay_check.isChecked():
            self._segment()

    def pane_items(self) -> list[tuple[str, PaneImage]]:
        """(caption, image) for the original then each restoration, masks attached if shown."""
        if self._xray is None:
            return []
        items = [("Original", PaneImage.from_xray(self._xray))]
        for r in self._results:
            items.append((f"{r.caption} · COVID-19 {r.covid_probability:.0%}",
                          PaneImage.from_display(r.pixels(self.resolution()), self._xray.pixel_spacing)))
        if self.overlay_check.isChecked() and self._segmentations and len(self._segmentations) == len(items):
            items = [(c, img.with_overlay(s.mask)) for (c, img), s in zip(items, self._segmentations, strict=True)]
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
        self.progress.setRange(0, len(todo))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._task = workers.submit(
            lambda ctx: _restore_all(xray, todo, iterations, ctx),
            owner=self, name="Restoration", priority=1,
            done=lambda res: self._finish(xray, iterations, chosen, res),
            failed=self._failed, cancelled=self._cancelled, progress=self._progress,
        )
        self._update_buttons()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.progress.setVisible(False)
            self.status.emit("Restoration cancelled")
            self._update_buttons()

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if message:
            self.status.emit(message)

    def _finish(self, xray: XRay, iterations: int | None, chosen: list[tuple[str, str]],
                new: list[CompareResult]) -> None:
        self._task = None
        self.progress.setVisible(False)
        for r in new:
            self._cache[(str(xray.source), r.variant_id, iterations)] = r
        self._evict(keep=str(xray.source))
        if xray is self._xray:
            self._results = [self._cache[(str(xray.source), vid, iterations)] for vid, _ in chosen]
            self._segmentations = None
            self._show_results()
            self.status.emit(f"Restored with {len(self._results)} model(s)")
            if self.overlay_check.isChecked():
                self._segment()
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
        self.progress.setVisible(False)
        self.status.emit(message)
        self._update_buttons()
        from app.qt_util import show_error

        show_error(self, message)

    def _cancelled(self) -> None:
        self._task = None
        self._update_buttons()

    def _show_results(self) -> None:
        rows: list[tuple[str, str]] = []
        if self._xray is not None:
            rows.append(("Original", "–"))
            rows += [(r.caption, f"{r.covid_probability:.1%}") for r in self._results]
        self.table.setRowCount(len(rows))
        for i, (name, prob) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(name))
            self.table.setItem(i, 1, QTableWidgetItem(prob))
            self.table.setItem(i, 2, QTableWidgetItem(self._area_text(i)))
        self._update_export()
        self.panesChanged.emit()

    def _area_text(self, row: int) -> str:
        if not self._segmentations or row >= len(self._segmentations):
            return ""
        a = self._segmentations[row].areas
        text = f"{a.fraction:.1%}"
        if a.total_mm2 is not None:
            text += f" · {a.total_mm2 / 100:.0f} cm²"
        return text

    # -- lungs -----------------------------------------------------------------------------

    def _overlay_toggled(self, on: bool) -> None:
        if on and self._segmentations is None:
            self._segment()
        self.panesChanged.emit()

    def _segment(self) -> None:
        if self._xray is None:
            return
        if self._seg_task is not None:
            self._seg_task.cancel()
        xray = self._xray
        images = [xray.display] + [r.pixels(self.resolution()) for r in self._results]
        self.seg_label.setText("Segmenting lungs…")
        self._seg_task = workers.submit(
            lambda ctx: _segment_all(images, xray.pixel_spacing, ctx), owner=self, name="Lung segmentation",
            done=lambda segs: self._segmented(xray, len(images), segs), failed=self._seg_failed,
        )

    def _segmented(self, xray: XRay, count: int, segs: list[Segmentation]) -> None:
        self._seg_task = None
        if xray is not self._xray or count != 1 + len(self._results):
            return
        self._segmentations = segs
        self.seg_label.setText("Areas are of the lung fields, as a share of the image (and in cm² when the "
                               "pixel spacing is known).")
        self._show_results()

    def _seg_failed(self, message: str) -> None:
        self._seg_task = None
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
        if self._xray is None or not self._segmentations:
            return
        stem = self._xray.source.stem
        path, _ = QFileDialog.getSaveFileName(self, "Save lung mask as DICOM SEG",
                                              str(Path.home() / f"{stem}_lungs.seg.dcm"), "DICOM (*.dcm)")
        if path:
            self.export_segmentation(path)

    def export_segmentation(self, path: str | Path) -> workers.Task | None:
        """Write the original's lung mask (computed here) as a DICOM SEG referencing the film, in a worker."""
        if self._xray is None or not self._segmentations:
            return None
        from core.exports import write_dicom_seg

        xray, mask = self._xray, self._segmentations[0].mask
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
        self.seg_export_button.setEnabled(dicom and bool(self._segmentations))

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

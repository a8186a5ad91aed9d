"""The "New study" dialog: cases (folder or CSV), candidates, readers, assignment design.

It only collects a :class:`~app.study_service.NewStudyRequest`; the engine validates it (every
bad CSV row, missing file or duplicate case comes back as one line) and creates the study
in a worker.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.study_service import NewStudyRequest

DESIGNS = [
    ("split", "Split the cases between the readers (as in the paper)"),
    ("all", "Every reader reads every case"),
    ("anchor", "Shared anchor cases + split blocks"),
]
KINDS = [("restoration", "Restoration preference (which image is best for diagnosis)"),
         ("segmentation", "Segmentation preference (which lung outline is most accurate)"),
         ("diagnosis", "Diagnosis accuracy, MRMC ROC (labels hidden; every image rated 1-5 for COVID-19)"),
         ("authenticity", "Real or synthetic? (single films; synthetic ones marked by 'r2c-review synthesize' "
                          "or labelled real/synthetic in the CSV)")]


class NewStudyDialog(QDialog):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New study")
        self.setMinimumWidth(600)
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. Restoration preference 2025")
        form.addRow("Name:", self.name)
        self.kind = QComboBox()
        for key, text in KINDS:
            self.kind.addItem(text, key)
        form.addRow("Type:", self.kind)
        self.washout = QSpinBox()
        self.washout.setObjectName("washoutDays")
        self.washout.setRange(0, 365)
        self.washout.setValue(28)
        self.washout.setSuffix(" days")
        self.washout.setToolTip("Diagnosis studies: each reader reads one candidate per session; the app opens "
                                "the next session only this long after the last rating of the previous one")
        form.addRow("Washout between sessions:", self.washout)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        row = QHBoxLayout()
        self.source = QLineEdit()
        self.source.setPlaceholderText("a folder of X-rays (labels from file names) or a CSV of cases")
        folder = QPushButton("Folder…")
        folder.clicked.connect(self._pick_folder)
        csv = QPushButton("CSV…")
        csv.clicked.connect(self._pick_csv)
        row.addWidget(self.source, 1)
        row.addWidget(folder)
        row.addWidget(csv)
        form.addRow("Cases:", row)
        self.variants = QListWidget()
        self._fill_variants()
        rows = self.variants.count()
        self.variants.setFixedHeight(self.variants.sizeHintForRow(0) * rows + 2 * self.variants.frameWidth() + 4)
        note = QLabel("The original is always included. Generators run their default passes\n"
                      "(3 for the compact models, 1 for the deep CNN).")
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.variants)
        column.addWidget(note)
        form.addRow("Candidates:", box)
        self.readers = QPlainTextEdit()
        self.readers.setPlaceholderText("one reader per line, e.g.\nMD I\nMD II")
        self.readers.setMaximumHeight(90)
        form.addRow("Readers:", self.readers)
        self.design = QComboBox()
        for key, text in DESIGNS:
            self.design.addItem(text, key)
        self.design.currentIndexChanged.connect(self._design_changed)
        form.addRow("Assignment:", self.design)
        self.anchor = QSpinBox()
        self.anchor.setRange(0, 10_000)
        self.anchor.setValue(10)
        form.addRow("Anchor cases:", self.anchor)
        self.qc = QSpinBox()
        self.qc.setRange(0, 50)
        self.qc.setToolTip("Cases shown a second time, unannounced, to measure each reader's consistency")
        form.addRow("Hidden QC repeats:", self.qc)
        self.pane_labels = QComboBox()
        self.pane_labels.addItem("Letters (A, B, C…)", "letters")
        self.pane_labels.addItem("Numbers (1, 2, 3…)", "numbers")
        form.addRow("Pane labels:", self.pane_labels)
        self.presentation = QComboBox()
        self.presentation.setObjectName("presentation")
        self.presentation.addItem("Native: the film's resolution (up to 1024 px)", "native")
        self.presentation.addItem("Paper: every pane at 256 px, as the R2C-GAN study", "paper")
        self.presentation.setToolTip("Every pane, the original included, takes the same path, so that no pane "
                                     "stands out by its resolution")
        form.addRow("Presentation:", self.presentation)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(2024)
        form.addRow("Random seed:", self.seed)
        self.show_label = QCheckBox("Show each case's disease label to the readers")
        self.show_label.setChecked(True)
        form.addRow(self.show_label)
        self.ask_confidence = QCheckBox("Readers also rate their confidence (1 to 5) before confirming")
        self.ask_confidence.setObjectName("askConfidence")
        form.addRow(self.ask_confidence)
        self.precompute = QCheckBox("Prepare the images right after creating the study")
        self.precompute.setChecked(True)
        form.addRow(self.precompute)
        self.protect = QCheckBox("Protect with an administrator password and reader PINs (PINs are generated)")
        self.protect.setObjectName("protectStudy")
        self.protect.setChecked(True)
        form.addRow(self.protect)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00;")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        form.addRow(buttons)
        self._kind_changed()

    def _fill_variants(self) -> None:
        """Generators (enabled when their weights are installed) and the classic enhancements."""
        from core.variants import VARIANTS, weights_path

        for v in VARIANTS.values():
            installed = weights_path(v.id) is not None
            item = QListWidgetItem(v.display_name + ("" if installed else " (weights not installed)"))
            item.setData(Qt.ItemDataRole.UserRole, v.id)
            enabled = Qt.ItemFlag.ItemIsEnabled if installed else Qt.ItemFlag.NoItemFlags
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | enabled)
            item.setCheckState(Qt.CheckState.Checked if installed and v.id != "r2c-q5" else Qt.CheckState.Unchecked)
            self.variants.addItem(item)
        for spec, name in (("clahe", "CLAHE (classic contrast enhancement)"), ("histeq", "Histogram equalization")):
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, spec)
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.variants.addItem(item)

    def _design_changed(self) -> None:
        self.anchor.setEnabled(self.design.currentData() == "anchor")

    def _kind_changed(self) -> None:
        """A diagnosis study is fully crossed with labels hidden, no repeats and no separate confidence."""
        diagnosis = self.kind.currentData() == "diagnosis"
        self.washout.setEnabled(diagnosis)
        if diagnosis:
            self.design.setCurrentIndex(self.design.findData("all"))
            self.show_label.setChecked(False)
            self.qc.setValue(0)
            self.ask_confidence.setChecked(False)
        for widget in (self.design, self.show_label, self.qc, self.ask_confidence):
            widget.setEnabled(not diagnosis)
        # real or synthetic: the film as it is (no candidates), truth hidden, no repeats, matched square panes
        authenticity = self.kind.currentData() == "authenticity"
        if authenticity:
            self.show_label.setChecked(False)
            self.qc.setValue(0)
            self.presentation.setCurrentIndex(self.presentation.findData("paper"))
        self.variants.setEnabled(not authenticity)
        self.presentation.setEnabled(not authenticity)
        for widget in (self.show_label, self.qc):
            widget.setEnabled(not diagnosis and not authenticity)
        self._design_changed()

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of cases")
        if folder:
            self.source.setText(folder)

    def _pick_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "CSV of cases", "", "CSV (*.csv)")
        if path:
            self.source.setText(path)

    def spec(self) -> NewStudyRequest:
        variants = [(self.variants.item(i).data(Qt.ItemDataRole.UserRole), None)
                    for i in range(self.variants.count())
                    if self.variants.item(i).checkState() == Qt.CheckState.Checked]
        readers = [r.strip() for r in self.readers.toPlainText().splitlines() if r.strip()]
        return NewStudyRequest(name=self.name.text().strip(), source=Path(self.source.text().strip()),
                               variants=variants,
                               readers=readers, design=self.design.currentData(), seed=self.seed.value(),
                               show_label=self.show_label.isChecked(), kind=self.kind.currentData(),
                               anchor_cases=self.anchor.value() if self.design.currentData() == "anchor" else 0,
                               qc_repeats=self.qc.value(), pane_labels=self.pane_labels.currentData(),
                               ask_confidence=self.ask_confidence.isChecked(),
                               presentation=self.presentation.currentData(),
                               washout_days=(float(self.washout.value()) if self.kind.currentData() == "diagnosis"
                                             else None))

    def problem(self) -> str | None:
        """What is obviously missing (the engine checks the rest)."""
        s = self.spec()
        if not s.name:
            return "Give the study a name."
        if not self.source.text().strip() or not s.source.exists():
            return "Choose a folder or CSV of cases that exists."
        if not s.variants and s.kind != "authenticity":
            return "Choose at least one candidate besides the original."
        if not s.readers:
            return "Add at least one reader."
        return None

    def _accept(self) -> None:
        problem = self.problem()
        if problem:
            self.error.setText(problem)
            return
        self.accept()

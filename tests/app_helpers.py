"""Helpers for the desktop-app tests: offscreen Qt, mouse drags, stand-in models, test images."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID-77301"


def open_main_window(qtbot, database: str, service=None, size: tuple[int, int] | None = (1280, 760)):
    """The main window on ``database``, shown and exposed (one place for what every GUI test needs
    first); ``size=None`` keeps the size the window chose, e.g. a remembered layout."""
    from app.main_window import MainWindow

    win = MainWindow(database=database, service=service)
    qtbot.addWidget(win)
    if size is not None:
        win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    return win


def drag(widget: QWidget, start: tuple[float, float], end: tuple[float, float],
         button: Qt.MouseButton = Qt.MouseButton.LeftButton, steps: int = 4) -> None:
    """Press, move (with the button held, which QTest.mouseMove cannot do) and release."""
    def send(kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> None:
        glob = widget.mapToGlobal(pos)
        event = QMouseEvent(kind, pos, glob, button if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton,
                            buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)

    p0, p1 = QPointF(*start), QPointF(*end)
    send(QEvent.Type.MouseButtonPress, p0, button)
    for i in range(1, steps + 1):
        t = i / steps
        send(QEvent.Type.MouseMove, p0 + (p1 - p0) * t, button)
    send(QEvent.Type.MouseButtonRelease, p1, Qt.MouseButton.NoButton)


def wheel(widget: QWidget, at: tuple[float, float], notches: float) -> None:
    pos = QPointF(*at)
    event = QWheelEvent(pos, widget.mapToGlobal(pos), QPointF(0, 0).toPoint(), QPointF(0, 120 * notches).toPoint(),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def click(widget: QWidget, at: tuple[float, float] | None = None) -> None:
    """A left click without movement (what reader mode takes as choosing a pane)."""
    if at is None:
        at = (widget.width() / 2, widget.height() / 2)
    drag(widget, at, at, steps=0)


def make_stand_in_generators(folder: Path, variants: tuple[str, ...] = ("r2c-q1",),
                             head_auc: dict[str, float] | None = None) -> Path:
    """Untrained but valid generator files, as trained ones will be installed; ``head_auc`` gives
    a variant's manifest a measured out-of-source AUC (``r2c-review train-heads``)."""
    import torch

    from core.models import build_generator
    from core.variants import VARIANTS
    from core.weights.model_file import Manifest, save_model

    torch.manual_seed(0)
    for vid in variants:
        v = VARIANTS[vid]
        save_model(folder / f"{vid}.safetensors", build_generator(v.architecture, v.q).state_dict(),
                   Manifest(variant_id=vid, display_name=v.display_name, kind="generator",
                            architecture=v.architecture, q=v.q, default_iterations=v.default_iterations,
                            provenance={"covid_head": {"out_of_source_auc": head_auc[vid],
                                                       "out_of_source_ci95": [head_auc[vid] - 0.05,
                                                                              min(1.0, head_auc[vid] + 0.05)]}}
                            if head_auc and vid in head_auc else {}))
    return folder


def write_test_dicom(path: Path, seed: int = 3, size: tuple[int, int] = (320, 288),
                     photometric: str = "MONOCHROME2") -> Path:
    """A 12-bit DICOM phantom carrying patient identifiers and a pixel spacing.

    As MONOCHROME1 the stored values are flipped, so that the film looks the same on screen.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from core.phantom import make_phantom

    pixels = np.round(make_phantom(seed, size) * 4095).astype(np.uint16)
    if photometric == "MONOCHROME1":
        pixels = (4095 - pixels).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientSex = "F"
    ds.StudyDate = "20240102"
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_test_png(path: Path, seed: int = 5, size: tuple[int, int] = (256, 256)) -> Path:
    import cv2

    from core.phantom import make_phantom, to_uint8

    cv2.imwrite(str(path), to_uint8(make_phantom(seed, size)))
    return path


def settle(qtbot, ms: int = 50) -> None:
    """Let queued signals and paints run."""
    from app import workers

    workers.wait_idle(60_000)
    qtbot.wait(ms)


def visible_texts(root: QWidget) -> list[tuple[str, str]]:
    """(widget description, text) for every user-visible string under ``root`` and its window.

    Covers text(), title(), placeholder/window/tool/status/what's-this texts, accessible
    names and descriptions, item texts and tooltips of item views, tab texts, combo box
    entries, pane captions, and the status bar message.
    """
    from PySide6.QtWidgets import (
        QAbstractButton,
        QComboBox,
        QGroupBox,
        QLabel,
        QLineEdit,
        QListWidget,
        QMainWindow,
        QTableWidget,
        QTabWidget,
        QTextEdit,
    )

    out: list[tuple[str, str]] = []
    window = root.window()
    out.append(("window title", window.windowTitle()))
    if isinstance(window, QMainWindow) and window.statusBar() is not None:
        out.append(("status bar", window.statusBar().currentMessage()))
    widgets = [w for w in [window, *window.findChildren(QWidget)] if w.isVisible()]
    for w in widgets:
        name = f"{type(w).__name__}({w.objectName()})"
        for attr in ("toolTip", "statusTip", "whatsThis", "accessibleName", "accessibleDescription", "windowTitle"):
            out.append((f"{name}.{attr}", getattr(w, attr)()))
        if isinstance(w, (QLabel, QAbstractButton, QLineEdit)):
            out.append((f"{name}.text", w.text()))
        if isinstance(w, QLineEdit):
            out.append((f"{name}.placeholder", w.placeholderText()))
        if isinstance(w, QTextEdit):
            out.append((f"{name}.text", w.toPlainText()))
        if isinstance(w, QGroupBox):
            out.append((f"{name}.title", w.title()))
        if isinstance(w, QComboBox):
            out += [(f"{name}.item", w.itemText(i)) for i in range(w.count())]
        if isinstance(w, QTabWidget):
            out += [(f"{name}.tab", w.tabText(i)) for i in range(w.count())]
        if isinstance(w, QListWidget):
            for i in range(w.count()):
                out += [(f"{name}.item", w.item(i).text()), (f"{name}.itemTip", w.item(i).toolTip())]
        if isinstance(w, QTableWidget):
            for r in range(w.rowCount()):
                for c in range(w.columnCount()):
                    item = w.item(r, c)
                    if item is not None:
                        out += [(f"{name}.cell", item.text()), (f"{name}.cellTip", item.toolTip())]
        if hasattr(w, "caption") and callable(w.caption):
            out.append((f"{name}.caption", w.caption()))
        for action in w.actions():
            out += [(f"{name}.action", action.text()), (f"{name}.actionTip", action.toolTip())]
    return [(where, text) for where, text in out if text]


def make_stand_in_segmenter(folder: Path) -> Path:
    """An untrained but valid lung-segmenter file (its masks are arbitrary, its plumbing real)."""
    import torch

    from core.models.segmenter import SEGMENTER_ARCH, build_segmenter
    from core.variants import SEGMENTER_ID
    from core.weights.model_file import Manifest, save_model

    torch.manual_seed(0)
    model = build_segmenter()
    with torch.no_grad():  # bias the output up so that some pixels count as lung
        model.segmentation_head[0].bias.fill_(0.5)
    save_model(folder / f"{SEGMENTER_ID}.safetensors", model.state_dict(),
               Manifest(variant_id=SEGMENTER_ID, display_name="Lung U-Net", kind="segmenter",
                        architecture=SEGMENTER_ARCH, input_size=256))
    return folder

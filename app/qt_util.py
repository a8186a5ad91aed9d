"""Small Qt helpers shared by the app: numpy <-> QImage, one-line error messages, yes/no questions."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QMessageBox, QWidget

APP_NAME = "R2C Review"


def gray_qimage(gray: np.ndarray) -> QImage:
    """An 8-bit grayscale H x W array as a QImage that owns its pixels."""
    arr = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8).copy()


def rgb_qimage(rgb: np.ndarray) -> QImage:
    """An H x W x 3 uint8 RGB array as a QImage that owns its pixels."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888).copy()


def pixels_qimage(pixels: np.ndarray) -> QImage:
    """Gray (H x W) or RGB (H x W x 3) 8-bit pixels as a QImage."""
    return gray_qimage(pixels) if pixels.ndim == 2 else rgb_qimage(pixels)


def rgba_qimage(rgba: np.ndarray) -> QImage:
    """An H x W x 4 uint8 RGBA array as a QImage that owns its pixels."""
    arr = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGBA8888).copy()


def qimage_gray_array(image: QImage) -> np.ndarray:
    """The pixels of a QImage as H x W uint8 gray (converted if needed); for tests and export."""
    img = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, :w].copy()


def mask_qimage(mask: np.ndarray, color: QColor) -> QImage:
    """A bool mask as a translucent tint with an opaque outline (painted over an image)."""
    m = np.asarray(mask, dtype=bool)
    inner = m.copy()
    inner[1:, :] &= m[:-1, :]
    inner[:-1, :] &= m[1:, :]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    edge = m & ~inner
    rgba = np.zeros(m.shape + (4,), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = color.red(), color.green(), color.blue()
    rgba[..., 3] = np.where(edge, 255, np.where(m, 110, 0))
    return rgba_qimage(rgba)


def show_error(parent: QWidget | None, message: str, title: str = APP_NAME) -> None:
    """A user-facing problem as one line in a dialog (never a traceback)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.open()


def confirm(parent: QWidget | None, title: str, question: str) -> bool:
    """A modal yes/no question, "No" by default (one place, so tests can answer it)."""
    answer = QMessageBox.question(parent, title, question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_secret(parent: QWidget | None, title: str, label: str) -> str | None:
    """A PIN or password, typed hidden; None when cancelled (one place, so tests can answer it)."""
    from PySide6.QtWidgets import QInputDialog, QLineEdit

    text, ok = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Password)
    return text if ok else None

"""One image pane with the mouse conventions radiologists expect.

Left-drag: window/level (right = wider, down = darker on screen, MONOCHROME1 or 2 alike: see
:mod:`app.viewer.state`); middle-drag: pan;
right-drag (up = in) or wheel: zoom; ``i`` inverts, space resets. A left click without a
drag emits :attr:`ImagePane.clicked` (reader mode uses it to pick a pane).

Pixels are rendered from the modality values with core's display chain only when the
window or inversion changes, and drawn scaled by the painter. Zoomed out, the values are
first block-averaged to about the screen's resolution, so a 4-megapixel DICOM windows
smoothly and shows no aliasing.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.qt_util import mask_qimage, pixels_qimage
from app.viewer.state import PaneImage, ViewState, state_for_preset, window_for

DRAG_THRESHOLD = 4  # px of movement before a left press counts as window/level rather than a click
WL_PER_PIXEL = 1.0 / 256.0  # default-window widths per pixel of drag
ZOOM_PER_PIXEL = 1.0 / 150.0  # right-drag: e-fold of zoom per 150 px
WHEEL_STEP = 1.15
MIN_ZOOM, MAX_ZOOM = 0.05, 64.0
MIN_WIDTH = 1e-3
OVERLAY_COLOR = QColor(255, 96, 48)


class ImagePane(QWidget):
    """Shows one :class:`PaneImage` under a :class:`ViewState`; see the module docstring."""

    stateChanged = Signal(object)  # ViewState, after a user interaction
    clicked = Signal()

    def __init__(self, parent: QWidget | None = None, *, caption: str = "", show_info: bool = True) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: PaneImage | None = None
        self._state = ViewState()
        self._caption = caption
        self._show_info = show_info
        self._selected = False
        self._overlay_opacity = 0.35
        self._gray: np.ndarray | None = None  # full-size rendered 8-bit pixels (None: stale)
        self._levels: dict[int, np.ndarray] = {}  # block-averaged values, by power of two
        self._rendered: dict[int, QImage] = {}  # rendered pixels per level for the current window
        self._mask_image: QImage | None = None
        self._press: tuple[Qt.MouseButton, QPointF, ViewState] | None = None
        self._dragging = False
        self.setAccessibleName(caption)

    # -- content ---------------------------------------------------------------------------

    def image(self) -> PaneImage | None:
        return self._image

    def set_image(self, image: PaneImage | None, reset: bool = False) -> None:
        """Show ``image``; the view state is kept (linked panes) unless ``reset``."""
        self._image = image
        self._mask_image = mask_qimage(image.overlay, OVERLAY_COLOR) if image and image.overlay is not None else None
        self._levels = {}
        if reset:
            self._state = ViewState()
        self._invalidate()

    def caption(self) -> str:
        return self._caption

    def set_caption(self, text: str) -> None:
        self._caption = text
        self.setAccessibleName(text)
        self.update()

    def set_selected(self, selected: bool) -> None:
        self._selected = selected
        self.update()

    def is_selected(self) -> bool:
        return self._selected

    def set_show_info(self, show: bool) -> None:
        self._show_info = show
        self.update()

    def set_overlay_opacity(self, opacity: float) -> None:
        self._overlay_opacity = float(min(max(opacity, 0.0), 1.0))
        self.update()

    def overlay_opacity(self) -> float:
        return self._overlay_opacity

    # -- view state ------------------------------------------------------------------------

    def state(self) -> ViewState:
        return self._state

    def set_state(self, state: ViewState) -> None:
        """Apply a state (from a linked pane, or programmatically) without re-emitting it."""
        window_changed = (state.level, state.width, state.inverted, state.preset, state.touched) != (
            self._state.level, self._state.width, self._state.inverted, self._state.preset, self._state.touched)
        self._state = state
        if window_changed:
            self._invalidate()
        else:
            self.update()

    def _change(self, state: ViewState) -> None:
        self.set_state(state)
        self.stateChanged.emit(state)

    def current_window(self):  # -> core.imaging.Window
        return window_for(self._image, self._state) if self._image is not None else None

    def fit(self) -> None:
        self._change(replace(self._state, zoom=1.0, center=(0.5, 0.5)))

    def one_to_one(self) -> None:
        """One image pixel per screen pixel (device pixels on high-DPI screens)."""
        fit = self._fit_scale()
        if fit > 0:
            self._change(replace(self._state, zoom=1.0 / (fit * self.devicePixelRatioF())))

    def toggle_invert(self) -> None:
        self._change(replace(self._state, inverted=not self._state.inverted))

    def apply_preset(self, index: int) -> None:
        if self._image is not None and 0 <= index < len(self._image.windows):
            self._change(state_for_preset(self._image, self._state, index))

    def reset(self) -> None:
        self._change(ViewState())

    # -- rendering -------------------------------------------------------------------------

    def _invalidate(self) -> None:
        self._gray = None
        self._rendered = {}
        self.update()

    def rendered_gray(self) -> np.ndarray | None:
        """The 8-bit pixels shown (window, inversion applied), at the image's own size.

        H x W for X-rays; H x W x 3 for colour renditions (e.g. a lung outline drawn in).
        """
        if self._image is not None and self._gray is None:
            self._gray = self._render(self._image.values)
        return self._gray

    def _render(self, values: np.ndarray) -> np.ndarray:
        from core.imaging import render, to_uint8

        img = self._image
        return to_uint8(render(values, window_for(img, self._state), img.invert != self._state.inverted))

    def _level_values(self, level: int) -> np.ndarray:
        """The values averaged over 2^level x 2^level blocks (what a zoomed-out screen can show)."""
        values = self._image.values
        for k in range(1, level + 1):
            if k not in self._levels:
                h, w = values.shape[0] // 2 * 2, values.shape[1] // 2 * 2
                blocks = values[:h, :w].reshape(h // 2, 2, w // 2, 2, *values.shape[2:])
                self._levels[k] = blocks.mean(axis=(1, 3), dtype=np.float32)
            values = self._levels[k]
        return values

    def _level_image(self, level: int) -> QImage:
        if level not in self._rendered:
            gray = self.rendered_gray() if level == 0 else self._render(self._level_values(level))
            self._rendered[level] = pixels_qimage(gray)
        return self._rendered[level]

    def _fit_scale(self) -> float:
        if self._image is None or self.width() <= 0 or self.height() <= 0:
            return 0.0
        return min(self.width() / self._image.width, self.height() / self._image.height)

    def scale(self) -> float:
        """Screen (logical) pixels per image pixel."""
        return self._fit_scale() * self._state.zoom

    def image_to_widget(self, x: float, y: float) -> QPointF:
        img, s = self._image, self.scale()
        cx, cy = self._state.center[0] * img.width, self._state.center[1] * img.height
        return QPointF(self.width() / 2 + (x - cx) * s, self.height() / 2 + (y - cy) * s)

    def widget_to_image(self, p: QPointF) -> tuple[float, float]:
        img, s = self._image, self.scale()
        cx, cy = self._state.center[0] * img.width, self._state.center[1] * img.height
        return cx + (p.x() - self.width() / 2) / s, cy + (p.y() - self.height() / 2) / s

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        if self._image is not None and self.scale() > 0:
            self._paint_image(p)
        self._paint_text(p)
        if self._selected:
            pen = QPen(QColor(255, 200, 0), 4)
            p.setPen(pen)
            p.drawRect(QRectF(self.rect()).adjusted(2, 2, -2, -2))
        elif self.hasFocus():
            p.setPen(QPen(QColor(90, 90, 90), 1))
            p.drawRect(QRectF(self.rect()).adjusted(0, 0, -1, -1))
        p.end()

    def _paint_image(self, p: QPainter) -> None:
        img, s = self._image, self.scale()
        top_left = self.image_to_widget(0, 0)
        target = QRectF(top_left.x(), top_left.y(), img.width * s, img.height * s)
        device_scale = s * self.devicePixelRatioF()
        # Zoomed out, render a block-averaged copy: no aliasing, and window/level stays fast on
        # big DICOMs. Magnified, show the pixels themselves, as radiologists expect.
        level = 0
        while device_scale * 2 ** (level + 1) <= 1.0 and min(img.width, img.height) >> (level + 1) >= 16:
            level += 1
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, device_scale * 2**level < 2.0)
        p.drawImage(target, self._level_image(level))
        if self._mask_image is not None and self._overlay_opacity > 0:
            p.setOpacity(self._overlay_opacity)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(target, self._mask_image)
            p.setOpacity(1.0)

    def _paint_text(self, p: QPainter) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        p.setFont(font)
        margin = 8
        if self._caption:
            big = QFont(font)
            big.setPointSizeF(font.pointSizeF() * 1.4)
            big.setBold(True)
            p.setFont(big)
            self._shadow_text(p, QPointF(margin, margin + p.fontMetrics().ascent()), self._caption)
            p.setFont(font)
        if self._show_info and self._image is not None:
            from core.imaging.presets import format_number

            w = self.current_window()
            text = f"W {format_number(w.width)}  L {format_number(w.center)}   {self.scale() * 100:.0f}%"
            if self._state.inverted:
                text += "  inv"
            self._shadow_text(p, QPointF(margin, self.height() - margin), text)

    @staticmethod
    def _shadow_text(p: QPainter, at: QPointF, text: str) -> None:
        p.setPen(QColor(0, 0, 0))
        p.drawText(at + QPointF(1, 1), text)
        p.setPen(QColor(235, 235, 235))
        p.drawText(at, text)

    def sizeHint(self) -> QSize:
        return QSize(400, 400)

    # -- interaction -----------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._press is None:
            self._press = (event.button(), event.position(), self._state)
            self._dragging = False
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._press is None or self._image is None:
            return
        button, start, state = self._press
        dx, dy = event.position().x() - start.x(), event.position().y() - start.y()
        if not self._dragging and max(abs(dx), abs(dy)) < DRAG_THRESHOLD:
            return
        self._dragging = True
        if button == Qt.MouseButton.LeftButton:
            self._change(replace(state, touched=True, width=max(MIN_WIDTH, state.width + dx * WL_PER_PIXEL),
                                 level=state.level + dy * WL_PER_PIXEL))
        elif button == Qt.MouseButton.MiddleButton:
            s = self.scale()
            self._change(replace(state, center=(state.center[0] - dx / (s * self._image.width),
                                                state.center[1] - dy / (s * self._image.height))))
        elif button == Qt.MouseButton.RightButton:
            zoom = min(MAX_ZOOM, max(MIN_ZOOM, state.zoom * math.exp(-dy * ZOOM_PER_PIXEL)))
            self._change(replace(state, zoom=zoom))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._press is not None and event.button() == self._press[0]:
            was_click = not self._dragging and self._press[0] == Qt.MouseButton.LeftButton
            self._press = None
            self._dragging = False
            if was_click:
                self.clicked.emit()
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if self._image is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        self.zoom_at(event.position(), WHEEL_STEP**steps)
        event.accept()

    def zoom_at(self, at: QPointF, factor: float) -> None:
        """Zoom by ``factor`` keeping the image point under ``at`` where it is."""
        if self._image is None or self.scale() <= 0:
            return
        ix, iy = self.widget_to_image(at)
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, self._state.zoom * factor))
        s = self._fit_scale() * zoom
        cx = ix - (at.x() - self.width() / 2) / s
        cy = iy - (at.y() - self.height() / 2) / s
        self._change(replace(self._state, zoom=zoom, center=(cx / self._image.width, cy / self._image.height)))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_I and not event.modifiers():
            self.toggle_invert()
        elif event.key() == Qt.Key.Key_Space and not event.modifiers():
            self.reset()
        else:
            super().keyPressEvent(event)  # digits, Enter... go to the page (reader votes)

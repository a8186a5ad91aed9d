"""Selection-ratio chart: one group of bars per candidate, one bar per reader plus overall, with intervals.

Drawn with QPainter (QtCharts is not part of PySide6-Essentials), so it scales crisply
and needs no extra dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"]
OVERALL_COLOR = "#333333"


@dataclass(frozen=True)
class Series:
    """One reader (or the overall row): ratio and interval per candidate."""

    name: str
    ratios: list[float]
    lows: list[float] | None = None
    highs: list[float] | None = None


class RatioChart(QWidget):
    """See the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ratioChart")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(220)
        self._categories: list[str] = []
        self._series: list[Series] = []
        self._title = ""

    def set_data(self, categories: list[str], series: list[Series], title: str = "") -> None:
        self._categories, self._series, self._title = list(categories), list(series), title
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, 300)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("white"))
        if not self._categories or not self._series:
            p.setPen(QColor("#777"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No votes yet")
            p.end()
            return
        fm = p.fontMetrics()
        left, right, top = 44, 12, 28 + fm.height()
        bottom = 2 * fm.height() + 16
        plot = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        if self._title:
            p.setPen(QColor("#222"))
            p.drawText(QRectF(0, 4, self.width(), fm.height() + 4), Qt.AlignmentFlag.AlignHCenter, self._title)
        # axes and grid
        p.setPen(QPen(QColor("#ddd"), 1))
        for i in range(0, 11, 2):
            y = plot.bottom() - plot.height() * i / 10
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(QColor("#555"))
            p.drawText(QRectF(0, y - fm.height() / 2, left - 6, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{i * 10}%")
            p.setPen(QPen(QColor("#ddd"), 1))
        n_cat, n_ser = len(self._categories), len(self._series)
        group_w = plot.width() / n_cat
        bar_w = group_w * 0.8 / n_ser
        for c, name in enumerate(self._categories):
            x0 = plot.left() + c * group_w + group_w * 0.1
            for s, series in enumerate(self._series):
                color = QColor(OVERALL_COLOR if series.name.lower() == "overall" else PALETTE[s % len(PALETTE)])
                ratio = series.ratios[c] if c < len(series.ratios) else 0.0
                h = plot.height() * max(0.0, min(1.0, ratio))
                rect = QRectF(x0 + s * bar_w, plot.bottom() - h, bar_w * 0.9, h)
                p.fillRect(rect, color)
                if series.lows is not None and series.highs is not None:
                    lo, hi = series.lows[c], series.highs[c]
                    cx = rect.center().x()
                    y_lo, y_hi = plot.bottom() - plot.height() * lo, plot.bottom() - plot.height() * hi
                    p.setPen(QPen(QColor("#111"), 1))
                    p.drawLine(QPointF(cx, y_lo), QPointF(cx, y_hi))
                    p.drawLine(QPointF(cx - bar_w * 0.2, y_lo), QPointF(cx + bar_w * 0.2, y_lo))
                    p.drawLine(QPointF(cx - bar_w * 0.2, y_hi), QPointF(cx + bar_w * 0.2, y_hi))
            p.setPen(QColor("#222"))
            p.drawText(QRectF(plot.left() + c * group_w, plot.bottom() + 4, group_w, fm.height() + 2),
                       Qt.AlignmentFlag.AlignHCenter, fm.elidedText(name, Qt.TextElideMode.ElideRight, int(group_w)))
        # legend
        x = plot.left()
        y = self.height() - fm.height() - 6
        for s, series in enumerate(self._series):
            color = QColor(OVERALL_COLOR if series.name.lower() == "overall" else PALETTE[s % len(PALETTE)])
            p.fillRect(QRectF(x, y + 2, 12, fm.height() - 4), color)
            p.setPen(QColor("#222"))
            p.drawText(QPointF(x + 16, y + fm.ascent()), series.name)
            x += 16 + fm.horizontalAdvance(series.name) + 18
        p.setPen(QPen(QColor("#888"), 1))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.end()

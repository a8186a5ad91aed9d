"""Statistics of a study: the paper's selection-ratio table, the chart, the tests, and export.

The numbers come from the study engine; this widget lays them out: a row per reader
(MD I, MD II, ...) and an Overall row, a column per candidate (Original first), each cell
"ratio (count) [low–high]" with 95 % Wilson intervals.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.admin.chart import RatioChart, Series
from app.study_service import StatsView


class StatisticsView(QWidget):
    """See the module docstring."""

    exportRequested = Signal()
    refreshRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._stats: StatsView | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.summary = QLabel("No statistics yet.")
        self.summary.setObjectName("statsSummary")
        self.summary.setWordWrap(True)
        top.addWidget(self.summary, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refreshRequested.emit)
        self.export_button = QPushButton("Export all…")
        self.export_button.setToolTip("Votes (one row per vote), the table as CSV and Markdown, "
                                      "a JSON summary and the chart")
        self.export_button.clicked.connect(self.exportRequested.emit)
        top.addWidget(self.refresh_button)
        top.addWidget(self.export_button)
        layout.addLayout(top)

        self.table = QTableWidget(0, 0)
        self.table.setObjectName("ratioTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.chart = RatioChart()
        self.tests = QTextEdit()
        self.tests.setObjectName("testsText")
        self.tests.setReadOnly(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.chart)
        split.addWidget(self.tests)
        split.setSizes([200, 300, 140])
        layout.addWidget(split, 1)

    def stats(self) -> StatsView | None:
        return self._stats

    def set_stats(self, stats: StatsView | None) -> None:
        self._stats = stats
        if stats is None:
            self.summary.setText("No statistics yet.")
            self.table.setRowCount(0)
            self.table.setColumnCount(0)
            self.chart.set_data([], [])
            self.tests.clear()
            return
        self.summary.setText(stats.summary)
        self.table.setColumnCount(len(stats.columns) + 1)
        self.table.setHorizontalHeaderLabels(["Reader (votes)", *(stats.headers or stats.columns)])
        self.table.setRowCount(len(stats.rows))
        for r, row in enumerate(stats.rows):
            head = QTableWidgetItem(f"{row.name} ({row.votes})")
            if row.name.lower() == "overall":
                font = head.font()
                font.setBold(True)
                head.setFont(font)
            self.table.setItem(r, 0, head)
            for c, cell in enumerate(row.cells):
                item = QTableWidgetItem(cell.text())
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(r, c + 1, item)
        series = [Series(row.name, [c.ratio for c in row.cells], [c.low for c in row.cells],
                         [c.high for c in row.cells]) for row in stats.rows]
        self.chart.set_data(stats.columns, series, "Selection ratio (95% interval; chance in the column names)")
        self.tests.setPlainText("\n".join(f"{name}: {text}" for name, text in stats.tests))

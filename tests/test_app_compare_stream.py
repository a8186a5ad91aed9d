"""Compare mode streams: each variant (and its lung overlay) appears the moment it is done, with
per-variant states and a cancel that keeps what is done; the results table shows full names."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QRect, Qt  # noqa: E402

from tests.app_helpers import (  # noqa: E402
    make_stand_in_generators,
    make_stand_in_segmenter,
    open_main_window,
    settle,
    write_test_png,
)

pytestmark = pytest.mark.gui
FIRST, LAST = "r2c-cnn-light", "r2c-q3"  # variants run in the list's order: CNN* first


@pytest.fixture
def compare(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The viewer in compare mode on one film, two stand-in variants checked; the last one is held back
    (``gate``) until the test releases it."""
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    models = make_stand_in_segmenter(make_stand_in_generators(tmp_path / "models", (FIRST, LAST)))
    monkeypatch.setenv("R2C_MODELS_DIR", str(models))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-resources")
    from app import engine
    from core.restore import Restorer

    engine.reset()
    gate = threading.Event()
    real = Restorer.restore_many

    def held(self, images, variant_id=None, *args, **kwargs):
        if variant_id == LAST:
            assert gate.wait(60), "the test never released the last variant"
        return real(self, images, variant_id, *args, **kwargs)

    monkeypatch.setattr(Restorer, "restore_many", held)
    win = open_main_window(qtbot, str(tmp_path / "study.db"))
    win.open_paths([str(write_test_png(tmp_path / "film.png"))])
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) == 1, timeout=20_000)
    panel = win.viewer.compare
    panel.refresh_variants()
    panel.set_checked_variants([FIRST, LAST])
    yield win, panel, gate
    gate.set()
    win.close()
    settle(qtbot, 20)
    engine.reset()


def test_first_variant_appears_before_the_last_finishes(qtbot, compare) -> None:
    win, panel, gate = compare
    panel.overlay_check.setChecked(True)  # the lung overlay streams too
    win.viewer.set_compare(True)
    qtbot.waitUntil(lambda: len(panel.results()) == 1 and panel.pending() == {LAST: "restoring…"}, timeout=60_000)
    assert not gate.is_set()  # the last one is held back, still running
    panes = win.viewer.grid.panes()
    assert len(panes) == 2 and "R2C-GAN (CNN*)" in panes[1].caption()
    rows = [panel.table.item(r, 0).text() for r in range(panel.table.rowCount())]
    assert rows == ["Original", "R2C-GAN (CNN*) ×3", "R2C-GAN (Q=3)"]
    assert panel.table.item(2, 1).text() == "restoring…" and panel.progress.isVisible()
    qtbot.waitUntil(lambda: all(p.image().overlay is not None for p in win.viewer.grid.panes()), timeout=60_000)
    assert not gate.is_set() and panel.table.item(1, 2).text().endswith("%")  # lungs of the first, already
    gate.set()
    qtbot.waitUntil(lambda: len(panel.results()) == 2 and not panel.pending(), timeout=60_000)
    qtbot.waitUntil(lambda: panel.segmentations() is not None, timeout=60_000)
    settle(qtbot)
    panes = win.viewer.grid.panes()
    assert len(panes) == 3 and all(p.image().overlay is not None for p in panes)
    assert not panel.progress.isVisible()


def test_cancel_keeps_what_is_done(qtbot, compare) -> None:
    win, panel, gate = compare
    win.viewer.set_compare(True)
    qtbot.waitUntil(lambda: len(panel.results()) == 1 and panel.pending() == {LAST: "restoring…"}, timeout=60_000)
    assert panel.cancel_button.isEnabled()
    panel.cancel()
    assert panel.pending() == {LAST: "cancelled"} and len(panel.results()) == 1
    assert panel.table.item(2, 1).text() == "cancelled" and not panel.cancel_button.isEnabled()
    assert len(win.viewer.grid.panes()) == 2
    gate.set()


def test_results_table_shows_full_variant_names(qtbot, compare) -> None:
    win, panel, gate = compare
    gate.set()
    win.viewer.set_compare(True)
    qtbot.waitUntil(lambda: len(panel.results()) == 2, timeout=60_000)
    settle(qtbot)
    table = panel.table
    assert table.textElideMode() == Qt.TextElideMode.ElideNone and table.wordWrap()
    assert table.horizontalHeader().sectionResizeMode(0).name == "Interactive"  # the user can widen it
    names = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert names == ["Original", "R2C-GAN (CNN*) ×3", "R2C-GAN (Q=3) ×3"]
    table.setColumnWidth(0, 60)  # even squeezed, the whole name is there: wrapped, and in the tooltip
    table.resizeRowsToContents()
    metrics = table.fontMetrics()
    for r, name in enumerate(names):
        assert table.item(r, 0).toolTip() == name
        wrapped = metrics.boundingRect(QRect(0, 0, table.columnWidth(0) - 8, 10_000),
                                       int(Qt.TextFlag.TextWordWrap), name)
        assert wrapped.height() <= table.rowHeight(r), (name, wrapped.height(), table.rowHeight(r))

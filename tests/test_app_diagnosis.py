"""Reader mode and statistics of a diagnosis (MRMC ROC) study on the real engine: one image, rated 1-5
with the buttons or the keys, labels hidden, candidate identity never shown, AUCs in the statistics."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.app_helpers import open_main_window, settle, visible_texts  # noqa: E402
from tests.study_helpers import make_env, make_study, write_cases  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def diagnosis_db(tmp_path, monkeypatch):
    from core.study.render import Renderer, RenditionCache, precompute
    from core.study.store import open_store

    env = make_env(tmp_path, monkeypatch)
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    write_cases(tmp_path / "cases", 4)
    database = str(tmp_path / "dx.db")
    with open_store(database) as store:
        info = make_study(store, tmp_path / "cases", name="Dx", candidates="clahe", kind="diagnosis", design="all",
                          show_label=False, readers=2, washout_days=0.0)
        precompute(store, "Dx", Renderer(info, RenditionCache(store.cache_dir)))
    return database, env


def test_rating_by_buttons_and_keys_then_auc_statistics(qtbot, diagnosis_db):
    from core.study.reading import ReadingSession
    from core.study.store import Vote, open_store

    database, _ = diagnosis_db
    win = open_main_window(qtbot, database, size=(1100, 700))
    win.open_reader_named("Dx", "MD I")
    page = win.page("reader")
    view = page.view
    qtbot.waitUntil(view.showing_case, timeout=60_000)
    settle(qtbot)
    assert len(view.panes()) == 1 and not view.disease.isVisible()
    assert "COVID-19" in view.question.text() and view.confidence_box.isVisible()
    assert not view.confirm_button.isEnabled()  # nothing rated yet
    given = []
    for i in range(8):  # 4 cases x 2 modalities, two sessions (washout 0)
        qtbot.waitUntil(lambda i=i: view.showing_case() and view.progress.text() == f"{i + 1} / 8", timeout=30_000)
        texts = " ".join(t for _, t in visible_texts(win))
        assert "CLAHE" not in texts and "Original" not in texts and "control" not in texts
        rating = 1 + i % 5
        if i % 2:
            qtbot.mouseClick(view.confidence_buttons[rating - 1], Qt.MouseButton.LeftButton)
            qtbot.mouseClick(view.confirm_button, Qt.MouseButton.LeftButton)
        else:
            qtbot.keyClick(view, getattr(Qt.Key, f"Key_{rating}"))
            qtbot.keyClick(view, Qt.Key.Key_Return)
        given.append(rating)
        qtbot.waitUntil(lambda: page.votes_pending() == 0, timeout=20_000)
    settle(qtbot)
    win.close()
    settle(qtbot, 20)
    win.service.close()
    with open_store(database) as store:
        with store.read() as s:
            ratings = [v.rating for v in s.scalars(select(Vote).order_by(Vote.id))]
        assert ratings == given
        other = ReadingSession(store, "Dx", "MD II")
        for i in range(other.total):
            other.rate(1 + (i * 3) % 5, index=i)
    from app.study_service import StudyService

    service = StudyService(database)
    try:
        study_id = next(s.id for s in service.list_studies() if s.name == "Dx")
        stats = service.statistics(study_id)
    finally:
        service.close()
    assert len(stats.columns) == 2 and "Original" in stats.columns and stats.columns == sorted(stats.columns)
    assert [r.name for r in stats.rows] == ["MD I", "MD II", "Mean, readers & cases random"]
    assert all(0 <= c.ratio <= 1 and c.auc and c.text().startswith("AUC") for r in stats.rows for c in r.cells)
    assert any(label.startswith("Difference") for label, _ in stats.tests)
    assert "chance AUC = 0.5" in stats.summary

"""A statistics cell with no votes behind it says so, instead of a 0.0% result with a 0.0% interval."""

from __future__ import annotations

from app.study_service import RatioCell, StudyService
from tests.study_helpers import make_study, write_cases


def test_cell_text_with_and_without_votes() -> None:
    assert RatioCell(0.0, 0, 0.0, 0.0, empty=True).text() == "–\nno votes"
    assert RatioCell(0.25, 1, 0.05, 0.7).text() == "25.0% (1)\n[5.0%–70.0%]"
    assert RatioCell(0.0, 0, 0.0, 0.6).text() == "0.0% (0)\n[0.0%–60.0%]"  # voted, never chosen: a real 0%


def test_reader_without_votes_reads_no_votes(study_env) -> None:
    from core.study import ReadingSession, open_store

    write_cases(study_env.tmp / "cases", 4)
    db = study_env.tmp / "s.db"
    with open_store(db) as store:
        make_study(store, study_env.tmp / "cases", name="R", design="all", seed=1)
        session = ReadingSession(store, "R", "MD I")
        for i in range(session.total):
            session.vote("A", index=i)
    service = StudyService(str(db))
    try:
        view = service.statistics(service.list_studies()[0].id)
    finally:
        service.close()
    rows = {row.name: row for row in view.rows}
    assert rows["MD II"].votes == 0
    assert [c.text() for c in rows["MD II"].cells] == ["–\nno votes"] * len(view.columns)
    md1 = [c.text() for c in rows["MD I"].cells]
    assert "no votes" not in "".join(md1) and any(t.startswith("0.0% (0)") for t in md1)

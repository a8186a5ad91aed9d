"""Schema migrations on databases that hold data: a study read at revision 0001 upgrades and keeps its votes.

The 0001 database is written with plain SQL (the ORM models are at head), the way the app of
that revision wrote it; then ``open_store`` upgrades it. Runs on SQLite and, when a server is
given, on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from core.study.manage import list_readers, list_studies, load_study
from core.study.reading import ReadingSession
from core.study.stats import study_stats
from core.study.store import MIGRATIONS_DIR, Vote, open_store
from tests.study_helpers import PostgresDatabase, postgres_url

T0 = datetime(2026, 1, 5, 9, 0, 0)  # naive UTC, as 0001 stored it


def _migrate(store, revision: str, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with store._write_engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def _revision(store) -> str:
    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _table(name: str, *columns: tuple[str, sa.types.TypeEngine]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, t) for c, t in columns))


def _write_0001_study(store) -> list[str]:
    """A two-case study with one reader and three votes (one an amendment), in 0001's tables."""
    i, s, b, d = sa.Integer(), sa.String(), sa.Boolean(), sa.DateTime()
    studies = _table("studies", ("id", i), ("name", s), ("kind", s), ("show_label", b), ("design", s),
                     ("anchor_cases", i), ("qc_repeats", i), ("seed", sa.BigInteger()), ("presentation_size", i),
                     ("pane_labels", s), ("segmenter_sha256", s), ("fingerprint", s), ("created_at", d))
    candidates = _table("candidates", ("id", i), ("study_id", i), ("position", i), ("spec", s), ("kind", s),
                        ("variant_id", s), ("iterations", i), ("display_name", s), ("model_sha256", s))
    cases = _table("cases", ("id", i), ("study_id", i), ("position", i), ("key", s), ("path", s),
                   ("file_sha256", s), ("label", s))
    readers = _table("readers", ("id", i), ("study_id", i), ("position", i), ("name", s), ("seed", sa.BigInteger()))
    assignments = _table("assignments", ("id", i), ("study_id", i), ("reader_id", i), ("case_id", i), ("seq", i),
                         ("pane_order", s), ("shared", b), ("repeat_of_id", i))
    votes = _table("votes", ("id", i), ("uid", s), ("assignment_id", i), ("candidate_id", i), ("pane_index", i),
                   ("pane_order", s), ("confidence", i), ("displayed_at", d), ("voted_at", d), ("decision_ms", i),
                   ("amends_id", i), ("origin", s))
    with store._write_engine.begin() as conn:
        conn.execute(sa.insert(studies).values(
            id=1, name="Old", kind="restoration", show_label=True, design="all", anchor_cases=0, qc_repeats=0,
            seed=7, presentation_size=512, pane_labels="letters", segmenter_sha256=None, fingerprint="f" * 64,
            created_at=T0))
        conn.execute(sa.insert(candidates), [
            dict(id=1, study_id=1, position=0, spec="original", kind="original", variant_id=None, iterations=None,
                 display_name="Original", model_sha256=None),
            dict(id=2, study_id=1, position=1, spec="clahe:2", kind="enhancement", variant_id=None,
                 iterations=None, display_name="CLAHE", model_sha256=None)])
        conn.execute(sa.insert(cases), [
            dict(id=c, study_id=1, position=c - 1, key=f"case{c}", path=f"/nowhere/case{c}.png",
                 file_sha256=str(c) * 64, label="control") for c in (1, 2, 3)])
        conn.execute(sa.insert(readers).values(id=1, study_id=1, position=0, name="MD I", seed=11))
        conn.execute(sa.insert(assignments), [
            dict(id=a, study_id=1, reader_id=1, case_id=a, seq=a - 1, pane_order="1,0" if a % 2 else "0,1",
                 shared=False, repeat_of_id=None) for a in (1, 2, 3)])
        rows = [
            dict(id=1, uid="u1", assignment_id=1, candidate_id=2, pane_index=0, pane_order="1,0", confidence=None,
                 displayed_at=T0, voted_at=T0 + timedelta(seconds=3), decision_ms=3000, amends_id=None,
                 origin="local"),
            dict(id=2, uid="u2", assignment_id=2, candidate_id=1, pane_index=0, pane_order="0,1", confidence=4,
                 displayed_at=None, voted_at=T0 + timedelta(seconds=9), decision_ms=None, amends_id=None,
                 origin="local"),
            dict(id=3, uid="u3", assignment_id=1, candidate_id=1, pane_index=1, pane_order="1,0", confidence=2,
                 displayed_at=None, voted_at=T0 + timedelta(seconds=20), decision_ms=None, amends_id=1,
                 origin="import:site-b.csv"),
        ]
        conn.execute(sa.insert(votes), rows)
    return [r["uid"] for r in rows]


def _votes(store) -> list[tuple]:
    with store.read() as s:
        return [(v.uid, v.assignment_id, v.candidate_id, v.pane_index, v.confidence, v.amends_id, v.origin,
                 v.voted_at) for v in s.scalars(sa.select(Vote).order_by(Vote.id))]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "old.db")
        return
    db = PostgresDatabase(postgres_url())
    yield db.url
    db.drop()


def test_a_0001_database_with_votes_upgrades_and_keeps_them(database, tmp_path):
    with open_store(database, cache_dir=tmp_path / "cache", migrate=False) as store:
        _migrate(store, "0001")
        uids = _write_0001_study(store)
    with open_store(database, cache_dir=tmp_path / "cache") as store:  # opening upgrades to head
        assert _revision(store) == "0004"
        before = _votes(store)
        assert [v[0] for v in before] == uids
        assert before[2][1:7] == (1, 1, 1, 2, 1, "import:site-b.csv")
        assert before[0][7] == T0.replace(tzinfo=UTC) + timedelta(seconds=3)
        info = load_study(store, "Old")
        assert info.ask_confidence is False  # studies made before the setting did not ask
        assert info.rating_scale is None and info.washout_days is None  # a preference study (0003)
        from core.study.credentials import authenticate_reader, is_protected

        assert not is_protected(store, "Old")  # made before 0004: an open study until passwords are set
        assert authenticate_reader(store, "Old", "MD I", None).method == "open"
        with store.read() as s:
            assert {(v.reader_id, v.auth) for v in s.scalars(sa.select(Vote))} == {(None, None)}
        assert [(r.name, r.done, r.total) for r in list_readers(store, "Old")] == [("MD I", 2, 3)]
        assert list_studies(store)[0].votes == 3
        assert [c.count for c in study_stats(store, "Old").overall.cells] == [2, 0]  # amendment counts, once
        session = ReadingSession(store, "Old", "MD I")
        assert session.position == 2 and session.progress == (2, 3)  # no stored position: first unanswered
        session.move_to(0)  # the new column works on the upgraded table
    with open_store(database, cache_dir=tmp_path / "cache") as again:
        assert ReadingSession(again, "Old", "MD I").position == 0
        _migrate(again, "0001", down=True)  # and back: the votes survive that too
        assert _revision(again) == "0001"
        with again.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM votes")).scalar() == 3
            assert conn.execute(sa.text("SELECT count(*) FROM assignments")).scalar() == 3
    with open_store(database, cache_dir=tmp_path / "cache") as last:
        assert _revision(last) == "0004" and _votes(last) == before

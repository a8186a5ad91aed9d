"""Study databases are checked, not trusted; imported votes are validated before anything is written.

Each test reproduces a defect of issue 12: a damaged votes page that passed ``study status``
and ``study list`` and then broke ``study export`` with a traceback; voting into a damaged
copy; vote imports that merged a differently defined study (no fingerprint), a second
independent first vote, year-9999 timestamps, confidence in a study without it, and values
longer than their columns (a traceback on PostgreSQL, silently kept on SQLite).
"""

from __future__ import annotations

import csv
import hashlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DatabaseError

from core.errors import StudyDefinitionError, StudyStateError
from core.study.export import export_study, import_votes, vote_rows
from core.study.manage import load_study
from core.study.reading import ReadingSession
from core.study.store import Vote, backup_database, integrity_check, open_store
from tests.study_helpers import PostgresDatabase, make_study, postgres_url, write_cases


def _voted_study(store, env, name: str = "H", **settings) -> None:
    make_study(store, env.tmp / "cases", name=name, seed=3, **settings)
    session = ReadingSession(store, name, "MD I")
    for i in range(session.total):
        session.go_to(i)
        session.vote("AB"[i % 2], **({"confidence": 3} if settings.get("ask_confidence") else {}))


@pytest.fixture
def voted_db(study_env) -> Path:
    write_cases(study_env.tmp / "cases", 4)
    path = study_env.tmp / "s.db"
    with open_store(path) as store:
        _voted_study(store, study_env)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _damage_table(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage, as a failing disk or a bad copy would."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * 64)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- damaged database ------------------------------------------------------------------------------


def test_damaged_votes_page_is_refused_at_open_and_never_written(voted_db):
    _damage_table(voted_db, "votes")
    before = _digest(voted_db)
    with pytest.raises(StudyStateError) as info:
        open_store(voted_db)
    assert str(voted_db) in info.value.one_line() and "damaged" in info.value.reason
    assert "study backup" in info.value.reason  # says how to recover
    assert _digest(voted_db) == before


@pytest.mark.parametrize("command", [["list"], ["status", "H"], ["export", "H", "--out", "OUT"],
                                     ["import-votes", "VOTES"]])
def test_study_commands_on_a_damaged_database_fail_in_one_line(voted_db, study_env, command, capsys):
    from core.cli.main import main

    with open_store(voted_db) as store:
        votes = export_study(store, "H", study_env.tmp / "exported").folder / "votes.csv"
    _damage_table(voted_db, "votes")
    args = [str(study_env.tmp / "out") if a == "OUT" else str(votes) if a == "VOTES" else a for a in command]
    assert main(["study", args[0], "--database", str(voted_db), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "damaged" in err and str(voted_db) in err


def test_a_damaged_unique_index_is_refused(voted_db):
    _damage_table(voted_db, "sqlite_autoindex_votes_1")  # the unique index on votes.uid
    with pytest.raises(StudyStateError, match="damaged"):
        open_store(voted_db)


def test_damage_seen_during_a_session_stops_all_writes(voted_db):
    with open_store(voted_db) as store:
        error = store.database_error(DatabaseError("SELECT 1", {}, Exception("database disk image is malformed")))
        assert "damaged" in error.reason and store.damaged
        with pytest.raises(StudyStateError, match="nothing more is written"), store.write():
            pass
        session_error = None
        try:
            ReadingSession(store, "H", "MD I").vote("A", index=0)
        except StudyStateError as exc:
            session_error = exc
        assert session_error is not None and "damaged" in session_error.reason


def test_sqlalchemy_errors_leave_the_store_as_study_errors(voted_db):
    with open_store(voted_db) as store:
        with pytest.raises(StudyStateError) as info, store.read() as s:
            s.execute(select(func.count()).select_from(Vote).where(Vote.id == func.no_such_function()))
        assert info.value.source == store.display_url and "database error" in info.value.reason


# -- backup ----------------------------------------------------------------------------------------


def test_backup_is_a_checked_consistent_copy(voted_db, study_env, capsys):
    from core.cli.main import main

    target = study_env.tmp / "backups"
    target.mkdir()
    assert main(["study", "backup", str(target), "--database", str(voted_db)]) == 0
    assert "integrity check: ok" in capsys.readouterr().out
    (copy,) = target.iterdir()
    assert copy.name.startswith("s-") and copy.suffix == ".db"
    with open_store(voted_db) as original, open_store(copy) as backup:
        assert integrity_check(backup) == "ok"
        assert vote_rows(backup, load_study(backup, "H")) == vote_rows(original, load_study(original, "H"))
        with pytest.raises(StudyStateError, match="cannot overwrite"):
            backup_database(original, voted_db)


def test_backup_of_a_damaged_database_is_refused(voted_db, study_env):
    with open_store(voted_db) as store:
        _damage_table(voted_db, "votes")
        with pytest.raises(StudyStateError, match="damaged"):
            backup_database(store, study_env.tmp / "copy.db")
    assert not (study_env.tmp / "copy.db").exists()


# -- vote import ----------------------------------------------------------------------------------


@pytest.fixture
def sites(study_env):
    """Site A voted; site B has the same study and no votes."""
    write_cases(study_env.tmp / "cases", 4)
    a, b = open_store(study_env.tmp / "a.db"), open_store(study_env.tmp / "b.db")
    _voted_study(a, study_env)
    make_study(b, study_env.tmp / "cases", name="H", seed=3)
    yield a, b
    a.close()
    b.close()


def _rows(store) -> list[dict]:
    return vote_rows(store, load_study(store, "H"))


def _write(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> Path:
    columns = [c for c in rows[0] if c not in drop]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _count(store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(Vote))


def _refused(store, path: Path, reason: str) -> None:
    with pytest.raises(StudyDefinitionError) as info:
        import_votes(store, path, "H")
    assert reason in info.value.reason, info.value.reason
    assert info.value.source == str(path)
    assert _count(store) == 0


def test_the_fingerprint_is_mandatory(sites, study_env):
    a, b = sites
    rows = _rows(a)
    _refused(b, _write(study_env.tmp / "blank.csv", [r | {"study_fingerprint": ""} for r in rows]),
             "no study_fingerprint")
    _refused(b, _write(study_env.tmp / "absent.csv", rows, drop=("study_fingerprint",)),
             "missing column(s): study_fingerprint")


def test_a_second_first_vote_on_a_query_is_refused(sites, study_env):
    a, b = sites
    rows = _rows(a)
    twin = rows[0] | {"vote_uid": "f" * 32, "pane_position": "2", "pane_label": "B",
                      "chosen_variant": rows[0]["pane_variants"].split("|")[1]}
    _refused(b, _write(study_env.tmp / "twin.csv", rows + [twin]), "a second first vote")
    assert import_votes(b, _write(study_env.tmp / "ok.csv", rows), "H") == len(rows)
    again = _write(study_env.tmp / "again.csv", [twin])
    with pytest.raises(StudyDefinitionError, match="already has a vote in the database"):
        import_votes(b, again, "H")
    assert _count(b) == len(rows)


@pytest.mark.parametrize("change, reason", [
    ({"voted_at": "9999-12-31T23:59:59+00:00"}, "is in the future"),
    ({"voted_at": "1999-01-01T00:00:00+00:00", "displayed_at": ""}, "long before the study was created"),
    ({"displayed_at": "9999-01-01T00:00:00+00:00"}, "is in the future"),
])
def test_timestamps_outside_the_study_lifetime_are_refused(sites, study_env, change, reason):
    a, b = sites
    rows = _rows(a)
    rows[0] = rows[0] | change
    _refused(b, _write(study_env.tmp / "t.csv", rows), reason)


def test_displayed_after_voted_is_refused(sites, study_env):
    from datetime import datetime, timedelta

    a, b = sites
    rows = _rows(a)
    later = datetime.fromisoformat(rows[0]["voted_at"]) + timedelta(seconds=5)
    rows[0] = rows[0] | {"displayed_at": later.isoformat()}
    _refused(b, _write(study_env.tmp / "d.csv", rows), "displayed_at is later than voted_at")


def test_confidence_in_a_study_without_confidence_is_refused(sites, study_env):
    a, b = sites
    rows = _rows(a)
    rows[1] = rows[1] | {"confidence": "4"}
    _refused(b, _write(study_env.tmp / "c.csv", rows), "does not ask for a confidence rating")


@pytest.mark.parametrize("column, length", [("vote_uid", 41), ("origin", 201), ("case", 301), ("reader", 101)])
def test_values_longer_than_their_columns_are_refused_on_sqlite(sites, study_env, column, length):
    a, b = sites
    rows = _rows(a)
    rows[0] = rows[0] | {column: "x" * length}
    _refused(b, _write(study_env.tmp / "long.csv", rows), f"{column} is {length} characters long")


def test_a_file_name_too_long_for_the_origin_column_is_refused(sites, study_env):
    a, b = sites
    path = _write(study_env.tmp / ("v" * 200 + ".csv"), _rows(a))
    _refused(b, path, "rename the file")


@pytest.mark.postgres
@pytest.mark.parametrize("column, value, reason", [
    ("vote_uid", "x" * 41, "vote_uid is 41 characters long"),
    ("origin", "x" * 201, "origin is 201 characters long"),
    ("case", "x" * 301, "case is 301 characters long"),
    ("decision_ms", str(2**31), "decision_ms 2147483648 is too large"),
])
def test_values_too_large_for_their_columns_are_refused_on_postgresql(study_env, column, value, reason):
    db = PostgresDatabase(postgres_url())
    try:
        write_cases(study_env.tmp / "cases", 4)
        with open_store(study_env.tmp / "a.db") as a, open_store(db.url, cache_dir=study_env.tmp / "pg") as b:
            _voted_study(a, study_env)
            make_study(b, study_env.tmp / "cases", name="H", seed=3)
            rows = _rows(a)
            rows[0] = rows[0] | {column: value}
            _refused(b, _write(study_env.tmp / "long.csv", rows), reason)
    finally:
        db.drop()


# -- blinding on disk -------------------------------------------------------------------------------


def test_renditions_are_written_in_random_order_with_one_time_per_case(study_env, monkeypatch):
    from core.study.render import Renderer, RenditionCache, precompute

    write_cases(study_env.tmp / "cases", 12, size=(64, 56))
    written: list[str] = []
    original_put = RenditionCache.put

    def recording_put(self, key, image):
        written.append(key)
        original_put(self, key, image)

    monkeypatch.setattr(RenditionCache, "put", recording_put)
    with open_store(study_env.tmp / "r.db") as store:
        make_study(store, study_env.tmp / "cases", name="R", candidates="clahe,histeq", readers=1)
        info = load_study(store, "R")
        renderer = Renderer(info, RenditionCache(store.cache_dir))
        precompute(store, "R", renderer)
        which = {renderer.key(case, cand): (case.id, cand.position) for case in info.cases for cand in info.candidates}
        firsts = {}
        for key in written:
            firsts.setdefault(which[key][0], which[key][1])
        assert len(firsts) == 12 and len(set(firsts.values())) > 1  # the original is not always written first
        for case in info.cases:
            times = {renderer.cache.path(renderer.key(case, c)).stat().st_mtime_ns for c in info.candidates}
            assert len(times) == 1


def test_a_decision_time_beyond_32_bits_is_refused(sites, study_env):
    a, b = sites
    rows = _rows(a)
    rows[0] = rows[0] | {"decision_ms": str(2**31)}
    _refused(b, _write(study_env.tmp / "big.csv", rows), "decision_ms 2147483648 is too large")

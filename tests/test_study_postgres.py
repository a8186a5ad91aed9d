"""The same study code on a real PostgreSQL server: full flow, multi-site merge, concurrent readers.

Needs ``R2C_TEST_POSTGRES_URL`` (``eval "$(.ci/postgres.sh)"`` sets it); skipped locally without
it, failed under CI. Each test works in its own throw-away database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from core.errors import StudyStateError
from core.study.export import export_study, import_votes
from core.study.manage import list_studies
from core.study.reading import ReadingSession
from core.study.stats import study_stats
from core.study.store import Assignment, Reader, Vote, open_store
from tests.study_helpers import PostgresDatabase, make_study, postgres_url, write_cases

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("study_env")]


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pg_url():
    db = PostgresDatabase(postgres_url())
    yield db.url
    db.drop()


def test_full_flow_and_merge_with_a_sqlite_site(pg_url, study_env):
    write_cases(study_env.tmp / "cases", 6)
    with open_store(pg_url, cache_dir=study_env.tmp / "cache") as pg, \
            open_store(study_env.tmp / "site.db") as site:
        assert pg.engine.dialect.name == "postgresql"
        for store in (pg, site):
            make_study(store, study_env.tmp / "cases", name="Multi", design="all", qc_repeats=1, seed=4)
        session = ReadingSession(pg, "Multi", "MD I")
        assert session.current().panes[0].image.dtype.name == "uint8"  # rendered on demand into the cache
        session.mark_displayed()
        session.vote("A", confidence=2)
        assert session.vote("B").amended
        remote = ReadingSession(site, "Multi", "MD II")
        for i in range(remote.total):
            remote.vote("C", index=i)
        out = export_study(site, "Multi", study_env.tmp / "site_out")
        assert import_votes(pg, out.folder / "votes.csv") == 7
        stats = study_stats(pg, "Multi")
        assert [r.n for r in stats.rows] == [1, 6, 7]
        assert ReadingSession(pg, "Multi", "MD II").finished
        session.go_to(4)
    # reopening a migrated server database is a no-op; the reader's position is on the server (any machine)
    with open_store(pg_url, cache_dir=study_env.tmp / "cache") as again:
        assert [s.name for s in list_studies(again)] == ["Multi"]
        assert ReadingSession(again, "Multi", "MD I").position == 4


def test_bad_server_url_is_one_clear_error(study_env):
    with pytest.raises(StudyStateError, match="cannot open the study database"):
        open_store("postgresql://nobody:wrong@127.0.0.1:1/none", cache_dir=study_env.tmp)


VOTER = """
import sys
from core.study.reading import ReadingSession
from core.study.store import open_store

url, reader, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
session = ReadingSession(open_store(url, cache_dir=sys.argv[4]), "Busy", reader)
print("ready", flush=True)
sys.stdin.readline()  # start together with the others
for r in range(rounds):
    for i in range(session.total):
        print(session.vote("ABC"[(i + r) % 3], index=i).vote_uid, flush=True)
"""


@pytest.mark.slow
def test_concurrent_readers_lose_and_duplicate_nothing(pg_url, study_env):
    write_cases(study_env.tmp / "cases", 8)
    with open_store(pg_url, cache_dir=study_env.tmp / "cache") as store:
        make_study(store, study_env.tmp / "cases", name="Busy", design="all", readers=4, seed=8)
    # Four readers at once, plus two more sessions of MD I amending the same queries at the same time.
    jobs = [("MD I", 4), ("MD II", 4), ("MD III", 4), ("MD IV", 4), ("MD I", 4), ("MD I", 4)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", VOTER, pg_url, reader, str(rounds), str(study_env.tmp / "c")],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
             for reader, rounds in jobs]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    for proc in procs:  # release them all at once
        proc.stdin.write("go\n")
        proc.stdin.flush()
    printed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        printed += out.split()
    assert len(printed) == sum(8 * rounds for _, rounds in jobs) == 192
    with open_store(pg_url, cache_dir=study_env.tmp / "cache") as store, store.read() as s:
        rows = s.execute(select(Vote, Reader.name).join(Assignment, Vote.assignment_id == Assignment.id)
                         .join(Reader, Assignment.reader_id == Reader.id).order_by(Vote.voted_at, Vote.id)).all()
    uids = [v.uid for v, _ in rows]
    assert Counter(uids).most_common(1)[0][1] == 1  # no duplicate
    assert sorted(uids) == sorted(printed)  # nothing lost, nothing extra
    assert Counter(name for _, name in rows) == {"MD I": 96, "MD II": 32, "MD III": 32, "MD IV": 32}
    chains: dict[int, list[Vote]] = defaultdict(list)
    for vote, _ in rows:
        chains[vote.assignment_id].append(vote)
    for chain in chains.values():  # every amendment points at the vote just before it: one chain, no fork
        assert chain[0].amends_id is None
        assert [v.amends_id for v in chain[1:]] == [v.id for v in chain[:-1]]

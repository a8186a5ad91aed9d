"""Kill a voting process mid-session: every vote it reported as committed is there, the database opens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.study.store import Vote, integrity_check, open_store
from tests.study_helpers import make_study, write_cases

REPO = Path(__file__).resolve().parents[1]

# Votes in a tight loop (amending once the list is done) and prints each vote's id only after
# ReadingSession.vote returned, i.e. after the commit.
WRITER = """
import sys
from core.study.reading import ReadingSession
from core.study.store import open_store

session = ReadingSession(open_store(sys.argv[1]), "Crash", "MD I")
print("ready", flush=True)
i = 0
while True:
    receipt = session.vote("ABC"[i % 3], index=i % session.total)
    print(receipt.vote_uid, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_mid_session_loses_no_committed_vote(study_env):
    db = study_env.tmp / "crash.db"
    write_cases(study_env.tmp / "cases", 5)
    with open_store(db) as store:
        make_study(store, study_env.tmp / "cases", name="Crash", readers=1, design="all")
    reported: list[str] = []
    for round_, wanted in enumerate((25, 60)):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            count = 0
            deadline = time.monotonic() + 60
            while count < wanted and time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line, f"writer died: {proc.stderr.read()}"
                reported.append(line.strip())
                count += 1
            time.sleep(0.003 * round_)  # land the kill at a different point of the loop each round
            os.kill(proc.pid, signal.SIGKILL)
            rest, _ = proc.communicate(timeout=30)
            reported += [line for line in rest.split() if line]
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL

        with open_store(db) as store:
            assert integrity_check(store) == "ok"
            with store.read() as s:
                stored = set(s.scalars(select(Vote.uid)))
                total = s.scalar(select(func.count(Vote.id)))
            missing = [uid for uid in reported if uid not in stored]
            assert not missing, f"{len(missing)} committed votes lost"
            assert len(reported) <= total <= len(reported) + round_ + 1  # at most one unreported per kill
    assert len(reported) >= 85

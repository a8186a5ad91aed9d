"""The reading API: blind panes, votes committed at once, amendments, resume, timing, prefetch."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from sqlalchemy import select

from core.errors import StudyStateError
from core.study.manage import list_readers
from core.study.reading import Pane, QueryView, ReadingSession, VoteReceipt
from core.study.render import precompute
from core.study.store import Assignment, Vote, open_store
from tests.study_helpers import make_study, write_cases

pytestmark = pytest.mark.usefixtures("study_env")


@pytest.fixture
def study(store, study_env):
    write_cases(study_env.tmp / "cases", 6)
    info = make_study(store, study_env.tmp / "cases", name="Read", design="all", qc_repeats=1, seed=3)
    precompute(store, "Read")
    return info


def test_panes_are_blind(store, study):
    session = ReadingSession(store, "Read", "MD I")
    assert (session.reader, session.study_name, session.total) == ("MD I", "Read", 7)
    view = session.current()
    assert isinstance(view, QueryView)
    assert [p.label for p in view.panes] == ["A", "B", "C"]
    assert {(p.image.shape, p.image.dtype) for p in view.panes} == {((410, 512), np.dtype(np.uint8))}
    assert view.disease_label in ("COVID-19", "control")
    # Nothing a reader session returns names a candidate, a model or a file.
    shown = [view, *view.panes, session.vote("B")]
    forbidden = ("original", "clahe", "histeq", "r2c", "CLAHE", "Histogram", "Original", ".png", "cases")
    for obj in shown:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, str):
                assert not any(word in value for word in forbidden), (f.name, value)
    assert {f.name for f in dataclasses.fields(Pane)} == {"label", "image"}
    assert {f.name for f in dataclasses.fields(VoteReceipt)} == {"index", "pane", "amended", "vote_uid"}


def test_pane_order_follows_the_stored_permutation(store, study):
    session = ReadingSession(store, "Read", "MD II")
    with store.read() as s:
        first = s.scalars(select(Assignment).join(Assignment.reader).where(Assignment.seq == 0)
                          .where(Assignment.reader.has(name="MD II"))).one()
        order = [int(p) for p in first.pane_order.split(",")]
    view = session.view(0)
    renderer = session._renderer
    expected = [renderer.get(study.cases[[c.id for c in study.cases].index(first.case_id)], study.candidates[p])
                for p in order]
    for pane, picture in zip(view.panes, expected, strict=True):
        np.testing.assert_array_equal(pane.image, picture)


def test_vote_is_committed_before_it_returns_and_resume_is_where_the_reader_was(store, study, study_env):
    session = ReadingSession(store, "Read", "MD I")
    assert session.index == 0 and session.progress == (0, 7)
    session.mark_displayed()
    time.sleep(0.02)
    receipt = session.vote("C", confidence=4)
    assert receipt == VoteReceipt(0, "C", False, receipt.vote_uid)
    # another connection sees it at once
    with open_store(study_env.tmp / "studies.db") as other, other.read() as s:
        vote = s.scalars(select(Vote).where(Vote.uid == receipt.vote_uid)).one()
        assert (vote.pane_index, vote.confidence, vote.amends_id) == (2, 4, None)
        assert vote.decision_ms >= 20 and vote.displayed_at <= vote.voted_at
    session.next()
    session.vote(0)  # by pane index, as the GUI may
    resumed = ReadingSession(store, "Read", "MD I")
    assert resumed.index == 1 and resumed.progress == (2, 7)  # the case the reader was on, answered
    assert resumed.view(0).chosen == "C" and resumed.view(0).confidence == 4
    assert resumed.view(1).chosen == "A" and resumed.view(1).chosen_index == 0
    assert [(r.name, r.done) for r in list_readers(store, "Read")] == [("MD I", 2), ("MD II", 0)]


def test_amendment_keeps_both_votes_and_the_latest_counts(store, study):
    from core.study.stats import latest_votes

    session = ReadingSession(store, "Read", "MD I")
    first = session.vote("A")
    second = session.vote("B", elapsed_ms=1500)
    assert not first.amended and second.amended
    with store.read() as s:
        votes = s.scalars(select(Vote).order_by(Vote.id)).all()
        assert [v.pane_index for v in votes] == [0, 1]
        assert votes[1].amends_id == votes[0].id and votes[1].decision_ms == 1500
        assert votes[1].voted_at >= votes[0].voted_at
    counted = latest_votes(store, "Read")
    assert len(counted) == 1 and counted[0].pane_index == 1
    assert ReadingSession(store, "Read", "MD I").view(0).chosen == "B"


def test_navigation_and_bad_requests(store, study):
    session = ReadingSession(store, "Read", "MD II")
    assert session.previous().index == 0
    assert session.go_to(6).index == 6
    assert session.next().index == 6  # stays on the last one
    with pytest.raises(StudyStateError, match="out of range"):
        session.go_to(7)
    with pytest.raises(StudyStateError, match="no pane 'D'"):
        session.vote("D")
    with pytest.raises(StudyStateError, match="no pane 3"):
        session.vote(3)
    with pytest.raises(StudyStateError, match="confidence"):
        session.vote("A", confidence=9)
    with pytest.raises(StudyStateError, match="no reader 'MD IX'"):
        ReadingSession(store, "Read", "MD IX")
    with pytest.raises(StudyStateError, match="no such study"):
        ReadingSession(store, "Nope", "MD I")
    for i in range(session.total):
        session.vote("A", index=i)
    assert session.finished and session.first_unanswered() is None
    assert ReadingSession(store, "Read", "MD II").index == 6


def test_decision_time_needs_the_panes_on_screen(store, study):
    session = ReadingSession(store, "Read", "MD I")
    session.mark_displayed()
    session.next()  # moving on resets the timer: no time is attributed to the wrong case
    session.vote("A")
    with store.read() as s:
        vote = s.scalars(select(Vote)).one()
        assert vote.decision_ms is None and vote.displayed_at is None


def test_prefetch_from_a_worker_thread(store, study):
    session = ReadingSession(store, "Read", "MD I")
    got = {}

    def worker() -> None:
        got["panes"] = session.panes_for(session.index + 1)

    thread = threading.Thread(target=worker)
    thread.start()
    session.vote("A")
    thread.join(30)
    assert [p.label for p in got["panes"]] == ["A", "B", "C"]
    assert session.next().panes[0].image.shape == got["panes"][0].image.shape


def test_numbers_as_pane_labels_and_hidden_disease_label(store, study_env):
    write_cases(study_env.tmp / "n", 2)
    make_study(store, study_env.tmp / "n", name="N", readers=1, pane_labels="numbers", show_label=False)
    session = ReadingSession(store, "N", "MD I")
    view = session.current()
    assert [p.label for p in view.panes] == ["1", "2", "3"] and view.disease_label is None
    assert session.vote("2").pane == "2"


def test_two_sessions_amending_at_once_form_one_chain(store, study):
    """SQLite: concurrent writers queue (BEGIN IMMEDIATE), so amendments never fork."""
    sessions = [ReadingSession(store, "Read", "MD I") for _ in range(3)]
    errors = []

    def hammer(session: ReadingSession) -> None:
        try:
            for i in range(15):
                session.vote("ABC"[i % 3], index=0)
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with store.read() as s:
        chain = s.scalars(select(Vote).order_by(Vote.voted_at, Vote.id)).all()
    assert len(chain) == 45
    assert chain[0].amends_id is None
    assert [v.amends_id for v in chain[1:]] == [v.id for v in chain[:-1]]


def _last_seen(store, reader: str):
    from core.study.store import Reader

    with store.read() as s:
        return s.execute(select(Reader.last_seq, Reader.last_seen_at).where(Reader.name == reader)).one()


def test_without_a_stored_position_reading_starts_at_the_first_unanswered_case(store, study):
    session = ReadingSession(store, "Read", "MD I")
    for i in (0, 1, 3):
        session.vote("A", index=i)  # voting is not moving: nothing is stored
    assert tuple(_last_seen(store, "MD I")) == (None, None)
    assert ReadingSession(store, "Read", "MD I").position == 2
    for i in range(session.total):
        session.vote("B", index=i)
    done = ReadingSession(store, "Read", "MD I")
    assert (done.position, done.index, done.finished) == (7, 6, True)  # past the end of the list


def test_position_is_stored_in_the_database_and_follows_the_reader_to_another_machine(store, study, study_env):
    session = ReadingSession(store, "Read", "MD II")
    session.vote("A")
    session.next()
    session.vote("B")
    session.go_to(4)
    session.previous()  # back to case 4 (index 3): an unanswered case after answered ones
    assert _last_seen(store, "MD II").last_seq == 3
    # Another workstation: its own Store (engine, connections) on the same database.
    with open_store(study_env.tmp / "studies.db") as other:
        elsewhere = ReadingSession(other, "Read", "MD II")
        assert (elsewhere.position, elsewhere.progress) == (3, (2, 7))
        elsewhere.go_to(1)
    assert ReadingSession(store, "Read", "MD II").position == 1
    assert ReadingSession(store, "Read", "MD I").position == 0  # per reader


def test_moving_writes_once_per_move_and_past_the_end_is_kept(store, study):
    session = ReadingSession(store, "Read", "MD I")
    assert not session.asks_confidence
    session.move_to(2)
    first = _last_seen(store, "MD I")
    assert first.last_seq == 2 and first.last_seen_at is not None
    time.sleep(0.01)
    session.move_to(2)  # staying put costs nothing
    session.go_to(2)
    assert _last_seen(store, "MD I") == first
    session.move_to(session.total)  # the GUI's end-of-list screen
    resumed = ReadingSession(store, "Read", "MD I")
    assert (resumed.position, resumed.index) == (7, 6)
    with pytest.raises(StudyStateError, match="out of range"):
        session.move_to(8)
    with pytest.raises(StudyStateError, match="out of range"):
        session.move_to(-1)
    assert ReadingSession(store, "Read", "MD I").position == 7


def test_a_study_that_asks_for_confidence_refuses_votes_without_one(store, study_env):
    write_cases(study_env.tmp / "conf", 3)
    make_study(store, study_env.tmp / "conf", name="Conf", readers=1, ask_confidence=True)
    session = ReadingSession(store, "Conf", "MD I")
    assert session.asks_confidence
    with pytest.raises(StudyStateError, match="asks for a confidence rating"):
        session.vote("A")
    with pytest.raises(StudyStateError, match="confidence must be"):
        session.vote("A", confidence=True)
    session.vote("B", confidence=5)
    assert ReadingSession(store, "Conf", "MD I").view(0).confidence == 5
    with store.read() as s:
        assert s.scalars(select(Vote.confidence)).all() == [5]

"""The reader's side of a study: the API the GUI's reading view is built on.

A ``ReadingSession`` is one reader working through their list. What it hands out is blind
by construction: a case's panes carry only a neutral label ("A", "B", ... or "1", "2", ...)
and a uint8 picture, all of one shape and dtype; no candidate id, file path or model name
leaves this module. The mapping from pane to candidate stays in the database.

Every vote is committed (durably, see ``store``) before ``vote`` returns. Voting again on a
case records an amendment: a new vote pointing at the one it replaces; the latest counts.

Where the reader is lives in the database too (``readers.last_seq``), written on every move,
so a reader who changes workstation on a shared study resumes where they were, not on the
first unanswered case (that is only the fallback for a reader who never moved).

Typical GUI use::

    session = ReadingSession(store, "Table III", "MD I")   # resumes where the reader last was
    view = session.current()                                # CaseView: panes in stored order
    ...show view.panes...; session.mark_displayed()         # starts the decision timer
    session.vote("C", confidence=4); session.next()         # confidence required if the study asks
    # prefetch in a worker thread: session.panes_for(session.index + 1)
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select, update

from core.errors import StudyStateError
from core.study.design import pane_label
from core.study.manage import CandidateInfo, CaseInfo, StudyInfo, load_study
from core.study.render import Renderer, RenditionCache
from core.study.store import Assignment, Reader, Store, Vote, utcnow

CONFIDENCE_RANGE = (1, 5)


@dataclass(frozen=True)
class Pane:
    label: str  # neutral: "A", "B", ... or "1", "2", ...
    image: np.ndarray  # uint8; H x W (restoration study) or H x W x 3 RGB (segmentation overlay)


@dataclass(frozen=True)
class CaseView:
    """What the reader sees for one query."""

    index: int  # 0-based place in this reader's list
    total: int
    disease_label: str | None  # None when the study hides labels
    panes: tuple[Pane, ...]
    chosen: str | None  # pane label of this reader's current (latest) vote here, if any
    confidence: int | None

    @property
    def chosen_index(self) -> int | None:
        return next((i for i, p in enumerate(self.panes) if p.label == self.chosen), None)


@dataclass(frozen=True)
class VoteReceipt:
    index: int
    pane: str
    amended: bool  # this vote replaced an earlier one on the same case
    vote_uid: str


@dataclass
class _Query:
    assignment_id: int
    case: CaseInfo
    panes: tuple[CandidateInfo, ...]
    chosen: str | None = None
    confidence: int | None = None


class ReadingSession:
    """One reader's pass through their queries; see the module docstring."""

    def __init__(self, store: Store, study: str | int, reader: str, renderer: Renderer | None = None) -> None:
        self._store = store
        self._study: StudyInfo = load_study(store, study)
        self._reader = self._study.reader(reader)
        self._renderer = renderer or Renderer(self._study, RenditionCache(store.cache_dir))
        by_position = {c.position: c for c in self._study.candidates}
        cases = {c.id: c for c in self._study.cases}
        with store.read() as s:
            rows = s.scalars(select(Assignment).where(Assignment.reader_id == self._reader.id)
                             .order_by(Assignment.seq)).all()
            self._queries = [_Query(a.id, cases[a.case_id],
                                    tuple(by_position[int(p)] for p in a.pane_order.split(",")))
                             for a in rows]
        if not self._queries:
            raise StudyStateError(self._study.name, f"reader {reader!r} has no cases assigned")
        self._by_assignment = {q.assignment_id: i for i, q in enumerate(self._queries)}
        self._refresh_votes()
        self._lock = threading.Lock()
        self._displayed: tuple[int, float, datetime] | None = None
        stored = self._stored_position()
        if stored is None:
            first = self.first_unanswered()
            stored = first if first is not None else len(self._queries)
        self._position = stored

    # ----------------------------------------------------------------- who, where

    @property
    def reader(self) -> str:
        return self._reader.name

    @property
    def study_name(self) -> str:
        return self._study.name

    @property
    def study_kind(self) -> str:
        """'restoration' (which image for diagnosis?) or 'segmentation' (which lung outline?)."""
        return self._study.kind

    @property
    def question(self) -> str:
        if self._study.kind == "segmentation":
            return "Which lung segmentation is the most accurate?"
        return "Which image would you prefer for diagnosis?"

    @property
    def position(self) -> int:
        """Where the reader is: a 0-based query, or ``total`` once they moved past the last one."""
        return self._position

    @property
    def index(self) -> int:
        """The query that ``current`` and ``vote`` act on (the last one when past the end)."""
        return min(self._position, len(self._queries) - 1)

    @property
    def total(self) -> int:
        return len(self._queries)

    @property
    def asks_confidence(self) -> bool:
        """The study wants a confidence rating (``CONFIDENCE_RANGE``) with every vote."""
        return self._study.ask_confidence

    @property
    def progress(self) -> tuple[int, int]:
        """(queries answered, queries in this reader's list)."""
        return sum(q.chosen is not None for q in self._queries), len(self._queries)

    @property
    def finished(self) -> bool:
        return all(q.chosen is not None for q in self._queries)

    def first_unanswered(self) -> int | None:
        return next((i for i, q in enumerate(self._queries) if q.chosen is None), None)

    # ----------------------------------------------------------------- what to show

    def pane_labels(self) -> list[str]:
        return [pane_label(i, self._study.pane_labels) for i in range(len(self._study.candidates))]

    def panes_for(self, index: int) -> tuple[Pane, ...]:
        """The pane pictures of query ``index`` in stored order; safe to call from a worker thread."""
        q = self._query(index)
        labels = self.pane_labels()
        return tuple(Pane(labels[i], self._renderer.get(q.case, cand)) for i, cand in enumerate(q.panes))

    def view(self, index: int) -> CaseView:
        q = self._query(index)
        return CaseView(index, len(self._queries), q.case.label if self._study.show_label else None,
                        self.panes_for(index), q.chosen, q.confidence)

    def current(self) -> CaseView:
        return self.view(self.index)

    # ----------------------------------------------------------------- navigation

    def go_to(self, index: int) -> CaseView:
        """Move to query ``index`` (stored as the reader's position) and return what to show."""
        self._query(index)
        self.move_to(index)
        return self.current()

    def move_to(self, position: int) -> None:
        """Move without rendering (a GUI that prefetches panes itself); ``total`` = past the last query.

        The position is committed at once, one small update, and only when it changes.
        """
        if not 0 <= position <= len(self._queries):
            raise StudyStateError(self._study.name, f"position {position + 1} is out of range "
                                                    f"1..{len(self._queries) + 1}")
        with self._lock:
            self._displayed = None
            if position == self._position:
                return
            with self._store.write() as s:
                s.execute(update(Reader).where(Reader.id == self._reader.id)
                          .values(last_seq=position, last_seen_at=utcnow()))
            self._position = position

    def next(self) -> CaseView:
        return self.go_to(min(self.index + 1, len(self._queries) - 1))

    def previous(self) -> CaseView:
        return self.go_to(max(self.index - 1, 0))

    def mark_displayed(self) -> None:
        """Call when the current panes are on screen: the decision time is measured from here."""
        self._displayed = (self.index, time.monotonic(), utcnow())

    # ----------------------------------------------------------------- voting

    def vote(self, pane: str | int, confidence: int | None = None, *, index: int | None = None,
             elapsed_ms: int | None = None) -> VoteReceipt:
        """Record the reader's choice; committed to the database before this returns.

        ``pane`` is a pane label ("B") or a 0-based pane index. ``index`` votes on that query
        instead of the current one. The decision time is measured from ``mark_displayed`` on
        the same query, unless the caller measured it itself (``elapsed_ms``). A study that
        asks for confidence refuses a vote without one.
        """
        labels = self.pane_labels()
        if isinstance(pane, int) and not isinstance(pane, bool) and 0 <= pane < len(labels):
            pane_index = pane
        elif isinstance(pane, str) and pane in labels:
            pane_index = labels.index(pane)
        else:
            raise StudyStateError(self._study.name, f"no pane {pane!r} (panes: {', '.join(labels)})")
        lo, hi = CONFIDENCE_RANGE
        if confidence is None and self._study.ask_confidence:
            raise StudyStateError(self._study.name, f"this study asks for a confidence rating ({lo} to {hi}) "
                                                    "with every vote")
        if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, int)
                                       or not lo <= confidence <= hi):
            raise StudyStateError(self._study.name, f"confidence must be a whole number from {lo} to {hi}")
        if elapsed_ms is not None and elapsed_ms < 0:
            raise StudyStateError(self._study.name, "elapsed time cannot be negative")
        with self._lock:
            index = self.index if index is None else index
            q = self._query(index)
            shown = self._displayed if self._displayed and self._displayed[0] == index else None
            if elapsed_ms is None and shown:
                elapsed_ms = round((time.monotonic() - shown[1]) * 1000)
            uid = uuid.uuid4().hex
            with self._store.write() as s:
                # Lock the query's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)
                # so that two sessions amending the same case form one chain, not a fork.
                assignment = s.scalars(select(Assignment).where(Assignment.id == q.assignment_id)
                                       .with_for_update()).one()
                previous = s.scalars(select(Vote).where(Vote.assignment_id == assignment.id)
                                     .order_by(Vote.voted_at.desc(), Vote.id.desc()).limit(1)).first()
                now = utcnow() if previous is None else max(utcnow(), previous.voted_at)
                displayed_at = shown[2] if shown else (now - timedelta(milliseconds=elapsed_ms)
                                                       if elapsed_ms is not None else None)
                vote = Vote(uid=uid, assignment_id=assignment.id, candidate_id=q.panes[pane_index].id,
                            pane_index=pane_index, pane_order=assignment.pane_order, confidence=confidence,
                            displayed_at=displayed_at, voted_at=now, decision_ms=elapsed_ms,
                            amends_id=previous.id if previous else None, origin="local")
                s.add(vote)
            q.chosen, q.confidence = labels[pane_index], confidence
            return VoteReceipt(index, labels[pane_index], previous is not None, uid)

    # ----------------------------------------------------------------- internals

    def _query(self, index: int) -> _Query:
        if not 0 <= index < len(self._queries):
            raise StudyStateError(self._study.name, f"case {index + 1} is out of range 1..{len(self._queries)}")
        return self._queries[index]

    def _stored_position(self) -> int | None:
        """The position stored by this reader's last move on any machine, if it still fits the list."""
        with self._store.read() as s:
            stored = s.scalar(select(Reader.last_seq).where(Reader.id == self._reader.id))
        return stored if stored is not None and 0 <= stored <= len(self._queries) else None

    def _refresh_votes(self) -> None:
        """Load this reader's latest vote per query, to resume where they left off."""
        labels = [pane_label(i, self._study.pane_labels) for i in range(len(self._study.candidates))]
        with self._store.read() as s:
            rows = s.execute(select(Vote.assignment_id, Vote.pane_index, Vote.confidence)
                             .join(Assignment, Vote.assignment_id == Assignment.id)
                             .where(Assignment.reader_id == self._reader.id)
                             .order_by(Vote.voted_at, Vote.id)).all()
        for assignment_id, pane_index, confidence in rows:  # later rows overwrite earlier ones
            q = self._queries[self._by_assignment[assignment_id]]
            q.chosen, q.confidence = labels[pane_index], confidence

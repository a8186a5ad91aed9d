"""The reader's side of a study: the API the GUI's reading view is built on.

A ``ReadingSession`` is one reader working through their list. What it hands out is blind
by construction: a case's panes carry only a neutral label ("A", "B", ... or "1", "2", ...)
and a uint8 picture, all of one shape and dtype; no candidate id, file path or model name
leaves this module. The mapping from pane to candidate stays in the database.

Every vote is committed (durably, see ``store``) before ``vote`` returns, with the reader
authenticated for the session (``auth``, from ``credentials.authenticate_reader``). Voting again on a
case records an amendment: a new vote pointing at the one it replaces; the latest counts.

Where the reader is lives in the database too (``readers.last_seq``), written on every move,
so a reader who changes workstation on a shared study resumes where they were, not on the
first unanswered case (that is only the fallback for a reader who never moved).

A diagnosis study (MRMC ROC) shows one image per query and takes a disease rating instead
(``rate``); its queries come in modality sessions, and a session opens only when the previous
one is finished and the study's washout has passed since its last rating (``session_opens_at``).

Typical GUI use::

    session = ReadingSession(store, "Table III", "MD I")   # resumes where the reader last was
    view = session.current()                                # QueryView: panes in stored order
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
from core.study.credentials import ReaderAuth
from core.study.definition import RATING_SCALES
from core.study.design import pane_label
from core.study.manage import CandidateInfo, CaseInfo, StudyInfo, load_study
from core.study.render import Renderer, RenditionCache
from core.study.store import Assignment, Reader, Store, Vote, utcnow

CONFIDENCE_RANGE = (1, 5)
REAL, SYNTHETIC = 0, 1  # a real-or-synthetic judgement, stored in the vote's rating column


@dataclass(frozen=True)
class Pane:
    label: str  # neutral: "A", "B", ... or "1", "2", ...
    image: np.ndarray  # uint8; H x W (restoration study) or H x W x 3 RGB (segmentation overlay)


@dataclass(frozen=True)
class QueryView:
    """What the reader sees for one query."""

    index: int  # 0-based place in this reader's list
    total: int
    disease_label: str | None  # None when the study hides labels
    panes: tuple[Pane, ...]
    chosen: str | None  # pane label of this reader's current (latest) vote here, if any
    confidence: int | None
    rating: int | None = None  # diagnosis: this reader's current disease rating here

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
    session: int | None = None  # diagnosis: modality session
    rating: int | None = None
    voted_at: datetime | None = None


class ReadingSession:
    """One reader's pass through their queries; see the module docstring."""

    def __init__(self, store: Store, study: str | int, reader: str, renderer: Renderer | None = None,
                 auth: ReaderAuth | None = None) -> None:
        self._store = store
        self._study: StudyInfo = load_study(store, study)
        self._reader = self._study.reader(reader)
        if auth is not None and (auth.study_id, auth.reader_id) != (self._study.id, self._reader.id):
            raise StudyStateError(self._study.name, f"this sign-in is not {reader}'s")
        self._auth = auth  # recorded with every vote (core.study.credentials)
        self._renderer = renderer or Renderer(self._study, RenditionCache(store.cache_dir))
        by_position = {c.position: c for c in self._study.candidates}
        cases = {c.id: c for c in self._study.cases}
        with store.read() as s:
            rows = s.scalars(select(Assignment).where(Assignment.reader_id == self._reader.id)
                             .order_by(Assignment.seq)).all()
            self._queries = [_Query(a.id, cases[a.case_id],
                                    tuple(by_position[int(p)] for p in a.pane_order.split(",")), session=a.session)
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
        if self.is_diagnosis:
            lo, hi = self.rating_range
            return (f"How likely is COVID-19 in this image? ({lo} = definitely not, {hi} = definitely)"
                    if hi == 5 else f"How likely is COVID-19 in this image? (confidence {lo} to {hi})")
        if self.is_authenticity:
            return "Is this chest film real or synthetic?"
        return "Which image would you prefer for diagnosis?"

    @property
    def is_authenticity(self) -> bool:
        """One film per query, judged real or synthetic (``judge``) rather than a choice between panes."""
        return self._study.kind == "authenticity"

    @property
    def is_diagnosis(self) -> bool:
        """One image per query, rated for disease (MRMC ROC study) rather than a choice between panes."""
        return self._study.kind == "diagnosis"

    @property
    def rating_range(self) -> tuple[int, int]:
        return RATING_SCALES[self._study.rating_scale or "5-point"]

    def session_of(self, index: int) -> int | None:
        return self._query(index).session

    def session_opens_at(self, index: int) -> datetime | None:
        """When query ``index``'s session opens (None: open now); StudyStateError while the previous
        session is unfinished. Sessions other than the first open ``washout_days`` after the last
        rating of the session before."""
        session = self._query(index).session
        if not session:
            return None
        before = [q for q in self._queries if q.session == session - 1]
        if any(q.chosen is None for q in before):
            raise StudyStateError(self._study.name, f"finish session {session} before starting session "
                                                    f"{session + 1}")
        last = max(q.voted_at for q in before if q.voted_at is not None)
        opens = last + timedelta(days=self._study.washout_days or 0.0)
        return opens if opens > utcnow() else None

    def _require_open(self, index: int) -> None:
        opens = self.session_opens_at(index)
        if opens is not None:
            raise StudyStateError(self._study.name, f"washout: session {self._query(index).session + 1} opens "
                                                    f"{opens:%Y-%m-%d %H:%M} UTC ({self._study.washout_days:g} "
                                                    "day(s) after the previous session)")

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

    def view(self, index: int) -> QueryView:
        """What query ``index`` shows; a diagnosis session still in its washout is refused."""
        q = self._query(index)
        if self.is_diagnosis:
            self._require_open(index)
        return QueryView(index, len(self._queries), q.case.label if self._study.show_label else None,
                        self.panes_for(index), q.chosen, q.confidence, q.rating)

    def current(self) -> QueryView:
        return self.view(self.index)

    # ----------------------------------------------------------------- navigation

    def go_to(self, index: int) -> QueryView:
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

    def next(self) -> QueryView:
        return self.go_to(min(self.index + 1, len(self._queries) - 1))

    def previous(self) -> QueryView:
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
        if self.is_diagnosis:
            raise StudyStateError(self._study.name, "a diagnosis study takes a rating (rate), not a pane choice")
        if self.is_authenticity:
            raise StudyStateError(self._study.name, "a real-or-synthetic study takes a judgement (judge), "
                                                    "not a pane choice")
        return self._record(self.index if index is None else index, pane_index, confidence, elapsed_ms, None)

    def _record(self, index: int, pane_index: int, confidence: int | None, elapsed_ms: int | None,
                rating: int | None) -> VoteReceipt:
        """Commit one vote (or rating) on query ``index``; amends the latest one there."""
        labels = self.pane_labels()
        with self._lock:
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
                            rating=rating, displayed_at=displayed_at, voted_at=now, decision_ms=elapsed_ms,
                            amends_id=previous.id if previous else None, origin="local",
                            reader_id=self._auth.reader_id if self._auth else None,
                            auth=self._auth.method if self._auth else None)
                s.add(vote)
            q.chosen, q.confidence, q.rating, q.voted_at = labels[pane_index], confidence, rating, now
            return VoteReceipt(index, labels[pane_index], previous is not None, uid)

    def rate(self, rating: int, *, index: int | None = None, elapsed_ms: int | None = None) -> VoteReceipt:
        """Diagnosis studies: record the disease rating of the current (or ``index``) image, durably.

        A later rating of the same query amends the earlier one, as votes do."""
        if not self.is_diagnosis:
            raise StudyStateError(self._study.name, "only a diagnosis study takes ratings; choose a pane instead")
        lo, hi = self.rating_range
        if isinstance(rating, bool) or not isinstance(rating, int) or not lo <= rating <= hi:
            raise StudyStateError(self._study.name, f"the rating must be a whole number from {lo} to {hi}")
        if elapsed_ms is not None and elapsed_ms < 0:
            raise StudyStateError(self._study.name, "elapsed time cannot be negative")
        index = self.index if index is None else index
        self._require_open(index)
        return self._record(index, 0, None, elapsed_ms, rating)

    def judge(self, synthetic: bool, confidence: int | None = None, *, index: int | None = None,
              elapsed_ms: int | None = None) -> VoteReceipt:
        """Real-or-synthetic studies: record the reader's judgement of the current (or ``index``) film,
        durably, in the vote's ``rating`` (``SYNTHETIC`` or ``REAL``), with the confidence (1-5) when the
        study asks for it. A later judgement of the same film amends the earlier one, as votes do."""
        if not self.is_authenticity:
            raise StudyStateError(self._study.name, "only a real-or-synthetic study takes real/synthetic judgements")
        if not isinstance(synthetic, bool):
            raise StudyStateError(self._study.name, "the judgement is real (False) or synthetic (True)")
        lo, hi = CONFIDENCE_RANGE
        if confidence is None and self._study.ask_confidence:
            raise StudyStateError(self._study.name, f"this study asks for a confidence rating ({lo} to {hi}) "
                                                    "with every judgement")
        if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, int)
                                       or not lo <= confidence <= hi):
            raise StudyStateError(self._study.name, f"confidence must be a whole number from {lo} to {hi}")
        if elapsed_ms is not None and elapsed_ms < 0:
            raise StudyStateError(self._study.name, "elapsed time cannot be negative")
        return self._record(self.index if index is None else index, 0, confidence, elapsed_ms,
                            SYNTHETIC if synthetic else REAL)

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
            rows = s.execute(select(Vote.assignment_id, Vote.pane_index, Vote.confidence, Vote.rating, Vote.voted_at)
                             .join(Assignment, Vote.assignment_id == Assignment.id)
                             .where(Assignment.reader_id == self._reader.id)
                             .order_by(Vote.voted_at, Vote.id)).all()
        for assignment_id, pane_index, confidence, rating, voted_at in rows:  # later rows overwrite earlier ones
            q = self._queries[self._by_assignment[assignment_id]]
            q.chosen, q.confidence, q.rating, q.voted_at = labels[pane_index], confidence, rating, voted_at

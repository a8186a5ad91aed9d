"""Selection ratios and the tests around them, with well-kept libraries.

Counting rules (the same for every number here):

* A *query* is one row of a reader's list. Only the reader's **latest** vote on a query
  counts (amendments replace, never add).
* Hidden QC repeats count **only** for each reader's consistency (same candidate chosen at
  both showings); they are left out of ratios, tests, agreement and worth, so no case
  weighs double.
* Overall = all counted queries of all readers pooled, as in the paper's Overall row.
* Confidence (when the study asks for it): the mean rating of the counted votes, per reader
  and Overall, in total and split by the candidate the vote chose (how sure readers were
  when they picked the original versus a restoration).

Libraries: Wilson intervals from statsmodels ``proportion_confint(method="wilson")``;
chi-square goodness-of-fit against uniform from scipy (candidates: a test against chance;
pane positions: a test of position bias); Fleiss' kappa from statsmodels on cases that
several readers answered. These pooled figures are the *descriptive* table (per-reader Wilson
intervals); the inference that generalises to readers and cases (two-way bootstrap intervals,
directional tests against chance, paired contrasts, per-reader position bias, a kappa interval)
is in ``core.study.inference`` and is part of every ``StudyStats``. Plackett-Luce worth was
dropped: with every query offering all candidates it equals the selection shares.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import chisquare
from sqlalchemy import select
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from core.study.inference import AnalysisSettings, Inference, infer, kappa_interval
from core.study.manage import load_study
from core.study.store import Assignment, Store, Vote

CONFIDENCE = 0.95


@dataclass(frozen=True)
class CountedVote:
    """The latest vote on one query."""

    reader: str
    case: str
    query: int  # assignment id
    candidate: int  # candidate position (0 = original)
    pane_index: int
    repeat_of: int | None = None  # query id of the first showing, for a QC repeat
    decision_ms: int | None = None
    confidence: int | None = None  # 1-5 when the reader rated it


@dataclass(frozen=True)
class Cell:
    count: int
    n: int
    ratio: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class TestResult:
    statistic: float | None
    p_value: float | None
    dof: int
    counts: list[int]


@dataclass(frozen=True)
class Row:
    reader: str  # reader name, or "Overall"
    n: int
    cells: list[Cell]  # one per candidate, in column order
    median_decision_s: float | None


@dataclass(frozen=True)
class ConfidenceRow:
    """Mean confidence of one reader's (or all readers') counted votes that carry a rating."""

    reader: str  # reader name, or "Overall"
    n: int  # counted votes with a rating
    mean: float | None
    by_candidate: list[float | None]  # mean rating of the votes that chose each candidate (column order)
    counts: list[int]  # how many rated votes chose each candidate


@dataclass(frozen=True)
class Agreement:
    kappa: float | None
    cases: int
    raters_per_case: int
    ci_low: float | None = None  # case-bootstrap interval
    ci_high: float | None = None


@dataclass(frozen=True)
class Consistency:
    reader: str
    agreeing: int
    pairs: int

    @property
    def rate(self) -> float | None:
        return self.agreeing / self.pairs if self.pairs else None


@dataclass
class StudyStats:
    study: str
    kind: str
    candidates: list[str]  # column names (display), original first
    specs: list[str]
    rows: list[Row]  # per reader, then Overall
    chance: TestResult
    position_bias: TestResult
    agreement: Agreement | None
    consistency: list[Consistency]
    restored_share: Cell  # share of counted queries won by anything but the original (pooled, descriptive)
    notes: list[str] = field(default_factory=list)
    confidence: list[ConfidenceRow] = field(default_factory=list)  # per reader, then Overall; empty if unrated
    inference: Inference | None = None  # readers and cases random; None without votes
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)

    @property
    def chance_level(self) -> float:
        """Share each candidate would get if readers chose at random among the panes (1/k)."""
        return 1 / len(self.candidates)

    @property
    def overall(self) -> Row:
        return self.rows[-1]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["consistency"] = [asdict(c) | {"rate": c.rate} for c in self.consistency]
        out["chance_level"] = self.chance_level
        out["restored_chance_level"] = 1 - self.chance_level
        return out


def wilson(count: int, n: int, confidence: float = CONFIDENCE) -> Cell:
    if n == 0:
        return Cell(count, n, None, None, None)
    lo, hi = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    return Cell(count, n, count / n, float(lo), float(hi))


def goodness_of_fit(counts: list[int]) -> TestResult:
    """Chi-square against equal shares; None when there is nothing to test."""
    if sum(counts) == 0 or len(counts) < 2:
        return TestResult(None, None, len(counts) - 1, counts)
    result = chisquare(counts)
    return TestResult(float(result.statistic), float(result.pvalue), len(counts) - 1, counts)


def _kappa(table: np.ndarray) -> float | None:
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(fleiss_kappa(table, method="fleiss"))
    return kappa if math.isfinite(kappa) else None


def agreement(votes: list[CountedVote], n_candidates: int, settings: AnalysisSettings | None = None
              ) -> Agreement | None:
    """Fleiss' kappa over cases answered by several readers (the most common number of readers),
    with a case-bootstrap interval when ``settings`` is given."""
    by_case: dict[str, list[int]] = defaultdict(list)
    for v in votes:
        by_case[v.case].append(v.candidate)
    shared = {case: c for case, c in by_case.items() if len(c) >= 2}
    if not shared:
        return None
    sizes = Counter(len(c) for c in shared.values())
    k = max(sizes, key=lambda size: (sizes[size], size))  # Fleiss needs equal raters per case
    table = np.zeros((0, n_candidates), int)
    for choices in shared.values():
        if len(choices) == k:
            table = np.vstack([table, np.bincount(choices, minlength=n_candidates)])
    kappa = _kappa(table)
    ci = kappa_interval(table, settings) if settings is not None and kappa is not None else None
    return Agreement(kappa, int(table.shape[0]), k, *(ci or (None, None)))


def confidence_rows(readers: list[str], counted: list[CountedVote], n_candidates: int) -> list[ConfidenceRow]:
    """Mean confidence per reader and Overall, in total and by chosen candidate; [] when no vote is rated."""
    rated = [v for v in counted if v.confidence is not None]
    if not rated:
        return []
    rows = []
    for name, subset in [(r, [v for v in rated if v.reader == r]) for r in readers] + [("Overall", rated)]:
        by_cand = [[v.confidence for v in subset if v.candidate == c] for c in range(n_candidates)]
        rows.append(ConfidenceRow(name, len(subset), statistics.fmean(v.confidence for v in subset) if subset
                                  else None, [statistics.fmean(c) if c else None for c in by_cand],
                                  [len(c) for c in by_cand]))
    return rows


def compute_stats(study: str, kind: str, candidates: list[str], specs: list[str], readers: list[str],
                  votes: list[CountedVote], settings: AnalysisSettings | None = None) -> StudyStats:
    """All statistics from the latest vote of every query (QC repeats included, used as documented)."""
    settings = settings or AnalysisSettings()
    n_cand = len(candidates)
    counted = [v for v in votes if v.repeat_of is None]
    rows = []
    for name, subset in [(r, [v for v in counted if v.reader == r]) for r in readers] + [("Overall", counted)]:
        counts = np.bincount([v.candidate for v in subset], minlength=n_cand)
        times = [v.decision_ms / 1000 for v in subset if v.decision_ms is not None]
        rows.append(Row(name, len(subset), [wilson(int(c), len(subset)) for c in counts],
                        statistics.median(times) if times else None))
    overall = rows[-1]
    by_query = {v.query: v for v in votes}
    consistency = []
    for name in readers:
        pairs = [(by_query[v.repeat_of], v) for v in votes
                 if v.reader == name and v.repeat_of is not None and v.repeat_of in by_query]
        consistency.append(Consistency(name, sum(a.candidate == b.candidate for a, b in pairs), len(pairs)))
    notes = []
    chance = goodness_of_fit([c.count for c in overall.cells])
    if overall.n and overall.n / n_cand < 5:
        notes.append("fewer than 5 expected votes per candidate: the chi-square p-values are rough")
    return StudyStats(
        study, kind, candidates, specs, rows, chance,
        goodness_of_fit([int(c) for c in np.bincount([v.pane_index for v in counted], minlength=n_cand)]),
        agreement(counted, n_cand, settings), consistency,
        wilson(sum(c.count for c in overall.cells[1:]), overall.n), notes,
        confidence_rows(readers, counted, n_cand), infer(counted, candidates, settings), settings,
    )


def latest_votes(store: Store, study: str | int) -> list[CountedVote]:
    """The latest vote (by time, then id) of every answered query of a study."""
    info = load_study(store, study)
    readers = {r.id: r.name for r in info.readers}
    cases = {c.id: c.key for c in info.cases}
    positions = {c.id: c.position for c in info.candidates}
    with store.read() as s:
        rows = s.execute(
            select(Vote.assignment_id, Vote.candidate_id, Vote.pane_index, Vote.decision_ms, Vote.confidence,
                   Assignment.reader_id, Assignment.case_id, Assignment.repeat_of_id)
            .join(Assignment, Vote.assignment_id == Assignment.id)
            .where(Assignment.study_id == info.id).order_by(Vote.voted_at, Vote.id)).all()
    latest = {}
    for a_id, cand_id, pane, ms, confidence, reader_id, case_id, repeat_of in rows:
        latest[a_id] = CountedVote(readers[reader_id], cases[case_id], a_id, positions[cand_id], pane, repeat_of, ms,
                                   confidence)
    return list(latest.values())


def study_stats(store: Store, study: str | int, settings: AnalysisSettings | None = None) -> StudyStats:
    info = load_study(store, study)
    return compute_stats(info.name, info.kind, [c.display_name for c in info.candidates],
                         [c.spec.spec for c in info.candidates], [r.name for r in info.readers],
                         latest_votes(store, info.id), settings)

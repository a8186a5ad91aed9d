"""Preference inference that generalises to readers and cases (both treated as random).

The pooled Wilson intervals and chi-square of ``stats`` treat every vote as independent, so one
reader who votes unlike the others can make a pooled result "significant" that says nothing
about readers in general. Here:

* **Shares** (each candidate's share of the counted votes) get a reader x case two-way bootstrap
  percentile interval: each replicate resamples readers and cases independently with
  replacement, and a vote weighs (times its reader was drawn) x (times its case was drawn).
* **Against chance** (1/k for k panes, (k-1)/k for "anything but the original"): a directional
  test per candidate, the one-sample t-test of the reader-level shares against chance (readers
  random; each reader's share already averages over that reader's cases). With one reader it is
  an exact binomial test and generalises to cases only (a note says so).
* **Paired contrasts** of each variant against the original: the per-reader difference of the
  two shares, paired t-test over readers, two-way bootstrap interval, Holm-adjusted p-values.
* **Position bias per reader**: chi-square of the votes by pane position, Holm over readers; a
  reader is flagged when the adjusted p < 0.05 (a pooled test dilutes one biased reader).
* **Fleiss' kappa**: case-bootstrap percentile interval.
* **Weighting** (``AnalysisSettings.weighting``): ``votes`` weighs every counted vote equally, so
  a case read by several readers (the anchor design's anchors) weighs that many times; ``cases``
  weighs every case equally (each vote 1 / number of readers of its case).

Plackett-Luce worth is not reported: with every query offering the full candidate set, its
top-1 maximum-likelihood worth equals the selection shares and adds nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

Weighting = Literal["votes", "cases"]
WEIGHTINGS: tuple[str, ...] = ("votes", "cases")
FLAG_ALPHA = 0.05


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that shapes a study's analysis, in one object (CLI, GUI and export share it)."""

    confidence: float = 0.95
    replicates: int = 2000  # bootstrap replicates (tests use few)
    seed: int = 0  # bootstrap seed, so a report is reproducible
    weighting: Weighting = "votes"

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, not {self.weighting!r}")
        if not 0 < self.confidence < 1 or self.replicates < 10:
            raise ValueError("confidence must be in (0, 1) and replicates at least 10")


class VoteLike(Protocol):
    reader: str
    case: str
    candidate: int
    pane_index: int


@dataclass(frozen=True)
class ShareInference:
    """A share with its clustered interval and its directional test against chance."""

    name: str
    share: float | None
    chance: float
    ci_low: float | None
    ci_high: float | None
    direction: Literal["above", "below", "at"] | None  # the share relative to chance
    p_value: float | None  # two-sided; see ``method``
    method: str


@dataclass(frozen=True)
class Contrast:
    """Share of a variant minus share of the original (paired within readers)."""

    name: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None


@dataclass(frozen=True)
class ReaderBias:
    reader: str
    counts: list[int]  # votes by pane position
    statistic: float | None
    p_value: float | None
    p_holm: float | None
    flagged: bool


@dataclass
class Inference:
    settings: AnalysisSettings
    readers: int  # readers with counted votes
    cases: int  # cases with counted votes
    shares: list[ShareInference]  # one per candidate, column order
    restored: ShareInference  # "chosen over the original"
    contrasts: list[Contrast]  # one per variant (not the original)
    position_bias: list[ReaderBias]
    notes: list[str] = field(default_factory=list)


def _ids(values: Sequence[str]) -> tuple[np.ndarray, int]:
    index: dict[str, int] = {}
    return np.array([index.setdefault(v, len(index)) for v in values], dtype=int), len(index)


def _base_weights(votes: Sequence[VoteLike], weighting: Weighting) -> np.ndarray:
    if weighting == "votes":
        return np.ones(len(votes))
    per_case = Counter(v.case for v in votes)
    return np.array([1.0 / per_case[v.case] for v in votes])


def _two_way_totals(reader: np.ndarray, case: np.ndarray, chosen: np.ndarray, weights: np.ndarray, k: int,
                    settings: AnalysisSettings) -> tuple[np.ndarray, np.ndarray]:
    """Reader x case bootstrap: per replicate, the weighted votes for each candidate (B, k) and in all (B,).

    In a replicate a vote weighs (times its reader was drawn) x (times its case was drawn) x its base
    weight. Replicates are processed in chunks so memory stays small for large studies."""
    rng = np.random.default_rng(settings.seed)
    n_r, n_c = int(reader.max()) + 1, int(case.max()) + 1
    wr = rng.multinomial(n_r, np.full(n_r, 1 / n_r), size=settings.replicates).astype(float)
    wc = rng.multinomial(n_c, np.full(n_c, 1 / n_c), size=settings.replicates).astype(float)
    onehot = np.eye(k)[chosen] * weights[:, None]  # (votes, k)
    per_candidate = np.empty((settings.replicates, k))
    chunk = max(1, 4_000_000 // max(1, len(chosen)))
    for start in range(0, settings.replicates, chunk):
        w = wr[start:start + chunk, reader] * wc[start:start + chunk, case]  # (chunk, votes)
        per_candidate[start:start + chunk] = w @ onehot
    return per_candidate, per_candidate.sum(axis=1)


def _interval(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return None, None
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _direction(share: float, chance: float) -> Literal["above", "below", "at"]:
    return "above" if share > chance + 1e-12 else "below" if share < chance - 1e-12 else "at"


def _ratio(numerator: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Bootstrap shares; NaN where a replicate drew no vote at all (split designs, few cases)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / total


def _share_test(name: str, hits: np.ndarray, weights: np.ndarray, samples: np.ndarray, reader: np.ndarray,
                n_r: int, chance: float, settings: AnalysisSettings) -> ShareInference:
    share = float((weights * hits).sum() / weights.sum())
    lo, hi = _interval(samples, settings.confidence)
    per_reader = _per_reader_share(hits, weights, reader, n_r)
    if n_r >= 2 and np.ptp(per_reader) > 0:
        p = float(st.ttest_1samp(per_reader, chance).pvalue)
        method = f"t-test of {n_r} reader shares against chance (readers and cases random)"
    elif n_r >= 2:
        p = 1.0 if abs(per_reader[0] - chance) < 1e-12 else 0.0
        method = f"all {n_r} readers have the same share (no reader variance)"
    else:
        k, n = int(hits.sum()), len(hits)
        p = float(st.binomtest(k, n, chance).pvalue)
        method = "exact binomial test (one reader: generalises to cases only)"
    return ShareInference(name, share, chance, lo, hi, _direction(share, chance), p, method)


def _per_reader_share(hits: np.ndarray, weights: np.ndarray, reader: np.ndarray, n_r: int) -> np.ndarray:
    num = np.bincount(reader, weights=weights * hits, minlength=n_r)
    den = np.bincount(reader, weights=weights, minlength=n_r)
    return num / den


def position_bias_by_reader(votes: Sequence[VoteLike], n_panes: int) -> list[ReaderBias]:
    """Chi-square of each reader's votes by pane position against equal use, Holm over readers."""
    by_reader: dict[str, list[int]] = defaultdict(list)
    for v in votes:
        by_reader[v.reader].append(v.pane_index)
    rows = []
    for reader, panes in by_reader.items():
        counts = np.bincount(panes, minlength=n_panes).tolist()
        if len(panes) >= n_panes:
            res = st.chisquare(counts)
            rows.append((reader, counts, float(res.statistic), float(res.pvalue)))
        else:
            rows.append((reader, counts, None, None))
    tested = [p for *_, p in rows if p is not None]
    adjusted = iter(multipletests(tested, method="holm")[1]) if tested else iter(())
    out = []
    for reader, counts, stat, p in rows:
        p_holm = float(next(adjusted)) if p is not None else None
        out.append(ReaderBias(reader, counts, stat, p, p_holm, p_holm is not None and p_holm < FLAG_ALPHA))
    return out


def fleiss_kappa_batch(tables: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of many (cases x categories) count tables at once: shape (..., cases, categories) -> (...).

    Same formula as statsmodels' ``fleiss_kappa`` (equal raters per case); NaN where undefined."""
    tables = np.asarray(tables, dtype=float)
    raters = tables.sum(axis=-1)[..., :1]  # equal in every row
    n_cases = tables.shape[-2]
    p_case = ((tables ** 2).sum(axis=-1) - raters) / (raters * (raters - 1))
    p_cat = tables.sum(axis=-2) / (n_cases * raters)
    p_e = (p_cat ** 2).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = (p_case.mean(axis=-1) - p_e) / (1 - p_e)
    return np.where(np.isfinite(kappa), kappa, np.nan)


def kappa_interval(table: np.ndarray, settings: AnalysisSettings) -> tuple[float, float] | None:
    """Case-bootstrap percentile interval of Fleiss' kappa (rows of ``table`` = cases, equal raters)."""
    if table.shape[0] < 2:
        return None
    rng = np.random.default_rng(settings.seed + 1)
    draws = rng.integers(0, table.shape[0], size=(settings.replicates, table.shape[0]))
    chunk = max(1, 2_000_000 // table.size)  # bounded memory for large studies
    samples = np.concatenate([fleiss_kappa_batch(table[draws[i:i + chunk]])
                              for i in range(0, settings.replicates, chunk)])
    lo, hi = _interval(samples, settings.confidence)
    return None if lo is None else (lo, hi)


def infer(votes: Sequence[VoteLike], candidates: list[str], settings: AnalysisSettings) -> Inference | None:
    """All clustered inference from the counted votes (no QC repeats); None without votes."""
    if not votes:
        return None
    k = len(candidates)
    reader, n_r = _ids([v.reader for v in votes])
    case, n_c = _ids([v.case for v in votes])
    chosen = np.array([v.candidate for v in votes])
    weights = _base_weights(votes, settings.weighting)
    per_candidate, total = _two_way_totals(reader, case, chosen, weights, k, settings)
    shares = [_share_test(name, (chosen == c).astype(float), weights, _ratio(per_candidate[:, c], total), reader,
                          n_r, 1 / k, settings) for c, name in enumerate(candidates)]
    restored = _share_test("Chosen over the original", (chosen != 0).astype(float), weights,
                           _ratio(total - per_candidate[:, 0], total), reader, n_r, (k - 1) / k, settings)
    contrasts = []
    raw_p = []
    for c in range(1, k):
        diff = (chosen == c).astype(float) - (chosen == 0).astype(float)
        est = float((weights * diff).sum() / weights.sum())
        lo, hi = _interval(_ratio(per_candidate[:, c] - per_candidate[:, 0], total), settings.confidence)
        per_reader = _per_reader_share(diff, weights, reader, n_r)
        if n_r >= 2 and np.ptp(per_reader) > 0:
            p = float(st.ttest_1samp(per_reader, 0.0).pvalue)
        elif n_r >= 2:
            p = 1.0 if per_reader[0] == 0 else 0.0
        else:  # one reader: sign test of the votes for either of the two
            wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
            p = float(st.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
        raw_p.append(p)
        contrasts.append((candidates[c], est, lo, hi, p))
    holm = multipletests(raw_p, method="holm")[1] if raw_p else []
    contrasts_out = [Contrast(n, e, lo, hi, p, float(h)) for (n, e, lo, hi, p), h in zip(contrasts, holm,
                                                                                         strict=True)]
    notes = []
    if n_r < 2:
        notes.append("one reader: intervals and tests generalise to cases, not to readers")
    elif n_r < 5:
        notes.append(f"only {n_r} readers: reader-level tests have {n_r - 1} df and little power")
    return Inference(settings, n_r, n_c, shares, restored, contrasts_out, position_bias_by_reader(votes, k),
                     notes)


def binary_share(name: str, readers: Sequence[str], cases: Sequence[str], hits: Sequence[bool], chance: float,
                 settings: AnalysisSettings) -> ShareInference | None:
    """The share of ``hits`` among answers (one per reader x case) with the reader x case two-way bootstrap
    interval and the reader-level test against ``chance`` that the preference shares use (``infer``);
    e.g. a real-or-synthetic study's accuracy against 50%. None without answers."""
    if not hits:
        return None
    reader, n_r = _ids(list(readers))
    case, _ = _ids(list(cases))
    chosen = np.asarray(hits, dtype=bool).astype(int)
    weights = np.ones(len(chosen)) if settings.weighting == "votes" else _base_weights(
        [_Answer(c) for c in cases], "cases")
    per_class, total = _two_way_totals(reader, case, chosen, weights, 2, settings)
    return _share_test(name, chosen.astype(float), weights, _ratio(per_class[:, 1], total), reader, n_r, chance,
                       settings)


@dataclass(frozen=True)
class _Answer:
    case: str

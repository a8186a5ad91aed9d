"""The Obuchowski-Rockette (OR) analysis of reader AUCs, with Hillis' degrees of freedom.

Model (Obuchowski & Rockette 1995): AUC_tr = mu + tau_t + R_r + (tau R)_tr + e_tr, the error
correlated over cases. Its covariance is summarised by Var(error) (same treatment and reader),
Cov1 (different treatment, same reader), Cov2 (same treatment, different reader) and Cov3
(both different), each the mean of the matching entries of the case covariance matrix.

Analyses (Hillis 2007, 2008; Hillis, Obuchowski & Berbaum 2005):

* readers and cases random (RRRC): F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)] with
  Hillis' denominator df = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]};
* readers fixed, cases random (FRRC): X2 = (t-1) MS(T) / [Var(e) - Cov1 + (r-1) max(Cov2 - Cov3, 0)],
  chi-square with t-1 df; the reader-by-reader differences use 2 (Var(e)_r - Cov1_r);
* readers random, cases fixed (RRFC): F = MS(T) / MS(T*R) on t-1 and (t-1)(r-1) df.

AUC confidence limits are truncated to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import numpy as np
from scipy import stats

from core.mrmc.auc import empirical_auc
from core.mrmc.covariance import CovarianceMethod, auc_covariance
from core.mrmc.ratings import RatingsTable

Effect = Literal["random", "fixed"]


@dataclass(frozen=True)
class CovarianceComponents:
    var_error: float
    cov1: float
    cov2: float
    cov3: float

    def correlations(self) -> dict[str, float | None]:
        """Cov_i / Var(error), as the OR-DBM and MRMCaov reports print them."""
        if self.var_error <= 0:
            return {"corr1": None, "corr2": None, "corr3": None}
        return {f"corr{i}": c / self.var_error for i, c in enumerate((self.cov1, self.cov2, self.cov3), 1)}


@dataclass(frozen=True)
class Anova:
    ms_t: float
    ms_r: float
    ms_tr: float
    ms_r_by_treatment: list[float]  # MS(R) within each treatment


@dataclass(frozen=True)
class Difference:
    """One treatment contrast: first minus second."""

    treatments: tuple[str, str]
    estimate: float
    se: float
    df: float | None  # None: normal reference (fixed readers)
    ci: tuple[float, float]
    statistic: float  # t or z
    p: float


@dataclass(frozen=True)
class TreatmentMean:
    treatment: str
    estimate: float
    se: float
    df: float | None
    ci: tuple[float, float]


@dataclass(frozen=True)
class GlobalTest:
    """Equality of all treatment means: F (random readers) or chi-square (fixed readers)."""

    statistic_name: Literal["F", "X2"]
    statistic: float
    df1: float
    df2: float | None
    p: float
    denominator: float


@dataclass(frozen=True)
class ReaderDifference:
    reader: str
    difference: Difference


@dataclass
class MrmcResult:
    treatments: list[str]
    readers: list[str]
    n_positive: int
    n_negative: int
    covariance_method: str
    readers_effect: Effect
    cases_effect: Effect
    conf_level: float
    auc: np.ndarray  # (T, R)
    auc_cov: np.ndarray  # (T*R, T*R), treatment-major; zeros with fixed cases
    components: CovarianceComponents
    anova: Anova
    var_r: float | None  # OR reader variance component (random-cases analyses)
    var_tr: float | None
    test: GlobalTest
    differences: list[Difference]  # every pair, in (first, second) sorted order
    means: list[TreatmentMean]
    reader_differences: list[ReaderDifference] = field(default_factory=list)  # fixed readers only

    @property
    def mean_auc(self) -> np.ndarray:
        return self.auc.mean(axis=1)


def _mean_squares(auc: np.ndarray) -> Anova:
    t, r = auc.shape
    grand = auc.mean()
    by_t, by_r = auc.mean(axis=1), auc.mean(axis=0)
    ms_t = r * float(((by_t - grand) ** 2).sum()) / (t - 1)
    ms_r = t * float(((by_r - grand) ** 2).sum()) / (r - 1) if r > 1 else float("nan")
    inter = auc - by_t[:, None] - by_r[None, :] + grand
    ms_tr = float((inter ** 2).sum()) / ((t - 1) * (r - 1)) if r > 1 else float("nan")
    ms_r_t = [float(auc[i].var(ddof=1)) if r > 1 else float("nan") for i in range(t)]
    return Anova(ms_t, ms_r, ms_tr, ms_r_t)


def covariance_components(cov: np.ndarray, t: int, r: int) -> CovarianceComponents:
    """Average the case covariance matrix into Var(error), Cov1, Cov2, Cov3."""
    tests = np.repeat(np.arange(t), r)
    readers = np.tile(np.arange(r), t)
    same_t = tests[:, None] == tests[None, :]
    same_r = readers[:, None] == readers[None, :]

    def mean(mask: np.ndarray) -> float:
        return float(cov[mask].mean()) if mask.any() else 0.0

    return CovarianceComponents(mean(same_t & same_r), mean(~same_t & same_r), mean(same_t & ~same_r),
                                mean(~same_t & ~same_r))


def _truncate(low: float, high: float) -> tuple[float, float]:
    return max(0.0, low), min(1.0, high)


def _contrast(names: tuple[str, str], estimate: float, se: float, df: float | None, conf: float) -> Difference:
    stat = _ratio(abs(estimate), se) * (1.0 if estimate >= 0 else -1.0)
    if df is None:
        crit = stats.norm.ppf((1 + conf) / 2)
        p = float(2 * stats.norm.sf(abs(stat)))
    else:
        crit = stats.t.ppf((1 + conf) / 2, df)
        p = float(2 * stats.t.sf(abs(stat), df))
    return Difference(names, estimate, se, df, (float(estimate - crit * se), float(estimate + crit * se)), stat, p)


def analyze(table: RatingsTable, cov: CovarianceMethod = "jackknife", readers: Effect = "random",
            cases: Effect = "random", conf_level: float = 0.95) -> MrmcResult:
    """Obuchowski-Rockette analysis of the empirical AUCs of a fully crossed ratings table."""
    if readers == "fixed" and cases == "fixed":
        raise ValueError("readers and cases cannot both be fixed: nothing would be random")
    auc = empirical_auc(table)
    t, r = auc.shape
    if readers == "random" and r < 2:
        raise ValueError("random readers need at least two readers")
    case_cov = auc_covariance(table, cov) if cases == "random" else np.zeros((t * r, t * r))
    comps = covariance_components(case_cov, t, r)
    anova = _mean_squares(auc)
    means = auc.mean(axis=1)
    var_r = var_tr = None
    if cases == "random" and r > 1:
        var_r = (anova.ms_r - anova.ms_tr) / t - comps.cov1 + comps.cov3
        var_tr = anova.ms_tr - comps.var_error + comps.cov1 + (comps.cov2 - comps.cov3)
    pairs = list(combinations(range(t), 2))
    names = table.treatments
    extra = max(comps.cov2 - comps.cov3, 0.0)
    reader_diffs: list[ReaderDifference] = []

    if readers == "random":
        denominator = anova.ms_tr + r * extra
        df2 = _hillis_df(denominator, anova.ms_tr, (t - 1) * (r - 1)) if cases == "random" \
            else float((t - 1) * (r - 1))
        f = _ratio(anova.ms_t, denominator)
        test = GlobalTest("F", f, float(t - 1), df2, float(stats.f.sf(f, t - 1, df2)), denominator)
        se_diff = float(np.sqrt(2 / r * denominator))
        diffs = [_contrast((names[a], names[b]), float(means[a] - means[b]), se_diff, df2, conf_level)
                 for a, b in pairs]
        tmeans = []
        for i in range(t):
            ms_r = anova.ms_r_by_treatment[i]
            cov2_i = _within_treatment_cov2(case_cov, i, r) if cases == "random" else 0.0
            var = ms_r / r + max(cov2_i, 0.0)
            df = _hillis_df(ms_r + r * max(cov2_i, 0.0), ms_r, r - 1) if cases == "random" else float(r - 1)
            half = stats.t.ppf((1 + conf_level) / 2, df) * np.sqrt(var)
            tmeans.append(TreatmentMean(names[i], float(means[i]), float(np.sqrt(var)), float(df),
                                        _truncate(float(means[i] - half), float(means[i] + half))))
    else:
        denominator = comps.var_error - comps.cov1 + (r - 1) * extra
        x2 = _ratio((t - 1) * anova.ms_t, denominator)
        test = GlobalTest("X2", x2, float(t - 1), None, float(stats.chi2.sf(x2, t - 1)), denominator)
        se_diff = float(np.sqrt(2 / r * denominator))
        diffs = [_contrast((names[a], names[b]), float(means[a] - means[b]), se_diff, None, conf_level)
                 for a, b in pairs]
        crit = stats.norm.ppf((1 + conf_level) / 2)
        tmeans = []
        for i in range(t):
            block = case_cov[i * r:(i + 1) * r, i * r:(i + 1) * r]
            var_i = float(np.diag(block).mean())
            cov2_i = _within_treatment_cov2(case_cov, i, r)
            se = float(np.sqrt((var_i + (r - 1) * max(cov2_i, 0.0)) / r))
            tmeans.append(TreatmentMean(names[i], float(means[i]), se, None,
                                        _truncate(float(means[i] - crit * se), float(means[i] + crit * se))))
        for j, reader in enumerate(table.readers):
            idx = [i * r + j for i in range(t)]
            block = case_cov[np.ix_(idx, idx)]
            var_j = float(np.diag(block).mean())
            cov1_j = float(block[~np.eye(t, dtype=bool)].mean())
            se = float(np.sqrt(2 * (var_j - cov1_j)))
            for a, b in pairs:
                reader_diffs.append(ReaderDifference(reader, _contrast(
                    (names[a], names[b]), float(auc[a, j] - auc[b, j]), se, None, conf_level)))

    return MrmcResult(names, table.readers, table.n_positive, table.n_negative,
                      cov if cases == "random" else "none", readers, cases, conf_level, auc, case_cov, comps,
                      anova, var_r, var_tr, test, diffs, tmeans, reader_diffs)


def _hillis_df(denominator: float, ms: float, df_ms: int) -> float:
    """Satterthwaite-type df of Hillis (2007): denominator^2 / (MS^2 / df_MS); infinite when MS = 0."""
    return float("inf") if ms <= 0 else denominator ** 2 / (ms ** 2 / df_ms)


def _ratio(numerator: float, denominator: float) -> float:
    """A test statistic that stays defined when the denominator vanishes (0/0 -> 0, x/0 -> inf)."""
    if denominator > 0:
        return numerator / denominator
    return 0.0 if numerator <= 0 else float("inf")


def _within_treatment_cov2(case_cov: np.ndarray, i: int, r: int) -> float:
    """Mean covariance between different readers within treatment i (Cov2 of that treatment alone)."""
    if r < 2:
        return 0.0
    block = case_cov[i * r:(i + 1) * r, i * r:(i + 1) * r]
    return float(block[~np.eye(r, dtype=bool)].mean())


def reader_auc_intervals(result: MrmcResult) -> np.ndarray:
    """Normal-theory CI of every single reader AUC from its case variance: shape (T, R, 2), truncated to [0, 1]."""
    se = np.sqrt(np.clip(np.diag(result.auc_cov), 0, None)).reshape(result.auc.shape)
    crit = stats.norm.ppf((1 + result.conf_level) / 2)
    return np.clip(np.stack([result.auc - crit * se, result.auc + crit * se], axis=-1), 0.0, 1.0)

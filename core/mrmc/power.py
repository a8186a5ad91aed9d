"""Sample size for an MRMC ROC study from pilot variance components (Hillis, Obuchowski & Berbaum 2011).

The pilot's Obuchowski-Rockette components are carried to a study with ``r`` readers and ``c``
cases: the treatment x reader variance stays, the error variance and covariances scale by
c_pilot / c. For two treatments with a true AUC difference delta (readers and cases random):

    lambda = (r delta^2 / 2) / [var_TR + (var_e - Cov1 + (r - 1) max(Cov2 - Cov3, 0)) * c_pilot / c]
    ddf    = [var_TR + (var_e - Cov1 + (r - 1) D) k]^2 / ([var_TR + (var_e - Cov1 - D) k]^2 / (r - 1))

with k = c_pilot / c and D = max(Cov2 - Cov3, 0); power = P(F'(1, ddf, lambda) > F_crit(1, ddf)).
Negative var_TR estimates are set to 0, as Hillis et al. recommend.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

from core.mrmc.obuchowski_rockette import MrmcResult


@dataclass(frozen=True)
class PilotComponents:
    var_tr: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    cases: int  # pilot cases (diseased + non-diseased)

    @classmethod
    def from_result(cls, result: MrmcResult) -> PilotComponents:
        if result.var_tr is None:
            raise ValueError("power needs the readers-and-cases-random analysis of a pilot")
        c = result.components
        return cls(result.var_tr, c.var_error, c.cov1, c.cov2, c.cov3, result.n_positive + result.n_negative)


@dataclass(frozen=True)
class PowerPoint:
    readers: int
    cases: int
    power: float
    ncp: float
    ddf: float


def power(pilot: PilotComponents, delta: float, readers: int, cases: int, alpha: float = 0.05) -> PowerPoint:
    """Power of the two-treatment RRRC test for a true AUC difference ``delta``."""
    if readers < 2 or cases < 2:
        raise ValueError("a study needs at least two readers and two cases")
    k = pilot.cases / cases
    d = max(pilot.cov2 - pilot.cov3, 0.0)
    var_tr = max(pilot.var_tr, 0.0)
    denom = var_tr + (pilot.var_error - pilot.cov1 + (readers - 1) * d) * k
    ncp = readers * delta ** 2 / 2 / denom
    ddf_den = (var_tr + (pilot.var_error - pilot.cov1 - d) * k) ** 2 / (readers - 1)
    ddf = denom ** 2 / ddf_den if ddf_den > 0 else float("inf")
    crit = stats.f.ppf(1 - alpha, 1, ddf)
    return PowerPoint(readers, cases, float(stats.ncf.sf(crit, 1, ddf, ncp)), float(ncp), float(ddf))


def smallest_cases(pilot: PilotComponents, delta: float, readers: int, target: float = 0.8, alpha: float = 0.05,
                   max_cases: int = 100_000) -> PowerPoint | None:
    """The fewest cases giving ``target`` power with ``readers`` readers (None: unreachable by adding cases,
    e.g. when reader variability alone is too large)."""
    if power(pilot, delta, readers, max_cases, alpha).power < target:
        return None
    lo, hi = 2, max_cases
    while lo < hi:
        mid = (lo + hi) // 2
        if power(pilot, delta, readers, mid, alpha).power >= target:
            hi = mid
        else:
            lo = mid + 1
    return power(pilot, delta, readers, lo, alpha)

"""Dorfman-Berbaum-Metz (DBM) variance components from jackknife pseudovalues.

OR-DBM MRMC prints these beside the OR analysis; with jackknife covariance the DBM and OR
analyses give the same F test (Hillis et al. 2005), so they serve as a cross-check. Pseudovalue
Y_trk = c A_tr - (c - 1) A_tr(-k); a treatment x reader x case ANOVA without replication gives
the mean squares, and the usual expected-mean-square equations the components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.mrmc.auc import psi_matrices
from core.mrmc.ratings import RatingsTable


@dataclass(frozen=True)
class DbmComponents:
    var_r: float
    var_c: float
    var_tr: float
    var_tc: float
    var_rc: float
    var_trc_error: float


def pseudovalues(table: RatingsTable) -> np.ndarray:
    """Jackknife pseudovalues of the AUC: shape (T, R, cases), cases in the table's order."""
    psi = psi_matrices(table)
    t, r, m, n = psi.shape
    total = psi.sum(axis=(2, 3))
    auc = total / (m * n)
    without = np.empty((t, r, m + n))
    pos, neg = np.flatnonzero(table.truth), np.flatnonzero(~table.truth)
    without[:, :, pos] = (total[..., None] - psi.sum(axis=3)) / ((m - 1) * n)
    without[:, :, neg] = (total[..., None] - psi.sum(axis=2)) / (m * (n - 1))
    c = m + n
    return c * auc[..., None] - (c - 1) * without


def dbm_components(table: RatingsTable) -> DbmComponents:
    y = pseudovalues(table)
    t, r, c = y.shape
    g = y.mean()
    yt, yr, yc = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    ytr, ytc, yrc = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    ms_r = t * c * ((yr - g) ** 2).sum() / (r - 1)
    ms_c = t * r * ((yc - g) ** 2).sum() / (c - 1)
    ms_tr = c * ((ytr - yt[:, None] - yr[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1))
    ms_tc = r * ((ytc - yt[:, None] - yc[None, :] + g) ** 2).sum() / ((t - 1) * (c - 1))
    ms_rc = t * ((yrc - yr[:, None] - yc[None, :] + g) ** 2).sum() / ((r - 1) * (c - 1))
    resid = y - ytr[..., None] - ytc[:, None, :] - yrc[None] + yt[:, None, None] + yr[None, :, None] \
        + yc[None, None, :] - g
    ms_trc = (resid ** 2).sum() / ((t - 1) * (r - 1) * (c - 1))
    return DbmComponents(float((ms_r - ms_tr - ms_rc + ms_trc) / (t * c)),
                         float((ms_c - ms_tc - ms_rc + ms_trc) / (t * r)),
                         float((ms_tr - ms_trc) / c), float((ms_tc - ms_trc) / r),
                         float((ms_rc - ms_trc) / t), float(ms_trc))

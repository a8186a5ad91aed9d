"""Covariance of the reader AUCs over cases: jackknife, DeLong, and the unbiased estimator.

Each function returns the (T*R) x (T*R) covariance of the AUCs flattened treatment-major
(index t * R + r), the matrix the Obuchowski-Rockette model averages into Var(error) and
Cov1-Cov3.

* jackknife: leave one case out (Hillis 2007; Efron 1982), factor (n-1)/n.
* DeLong: structural components (DeLong, DeLong & Clarke-Pearson 1988), S10/m + S01/n.
* unbiased: the U-statistic estimator of Gallas, Pennello & Myers (2007), which removes the
  bias of the squared mean (it can be negative for tiny samples).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from core.mrmc.auc import psi_matrices
from core.mrmc.ratings import RatingsTable

CovarianceMethod = Literal["jackknife", "delong", "unbiased"]
COVARIANCE_METHODS: tuple[str, ...] = ("jackknife", "delong", "unbiased")


def _flat(psi: np.ndarray) -> np.ndarray:
    t, r, m, n = psi.shape
    return psi.reshape(t * r, m, n)


def jackknife_covariance(table: RatingsTable) -> np.ndarray:
    """Jackknife over cases: recompute every AUC without each case in turn."""
    psi = _flat(psi_matrices(table))
    g, m, n = psi.shape
    total = psi.sum(axis=(1, 2))
    row, col = psi.sum(axis=2), psi.sum(axis=1)  # (g, m) per diseased case, (g, n) per non-diseased case
    without_pos = (total[:, None] - row) / ((m - 1) * n)
    without_neg = (total[:, None] - col) / (m * (n - 1))
    pseudo = np.concatenate([without_pos, without_neg], axis=1)  # (g, cases)
    k = pseudo.shape[1]
    centred = pseudo - pseudo.mean(axis=1, keepdims=True)
    return (k - 1) / k * centred @ centred.T


def delong_covariance(table: RatingsTable) -> np.ndarray:
    """DeLong's structural-component covariance."""
    psi = _flat(psi_matrices(table))
    _, m, n = psi.shape
    v10 = psi.mean(axis=2)  # (g, m)
    v01 = psi.mean(axis=1)  # (g, n)
    return np.cov(v10, ddof=1) / m + np.cov(v01, ddof=1) / n


def unbiased_covariance(table: RatingsTable) -> np.ndarray:
    """Gallas' unbiased estimator: second moments over all pair patterns, minus an unbiased mean product.

    For AUCs A_a, A_b (means of psi over m x n pairs) E[A_a A_b] mixes the moments of psi pairs
    sharing both cases, only the diseased case, only the non-diseased one, or none; the last is
    E[A_a]E[A_b]. Estimating each moment by its U-statistic gives an unbiased covariance.
    """
    psi = _flat(psi_matrices(table))
    _, m, n = psi.shape
    flat = psi.reshape(psi.shape[0], -1)
    both = flat @ flat.T  # sum over pairs sharing both cases
    row, col = psi.sum(axis=2), psi.sum(axis=1)
    total = flat.sum(axis=1)
    delta = (m * n) ** 2 / (m * (m - 1) * n * (n - 1))
    return ((1 - delta) * np.outer(total, total) + delta * (row @ row.T + col @ col.T - both)) / (m * n) ** 2


def auc_covariance(table: RatingsTable, method: CovarianceMethod) -> np.ndarray:
    """The covariance matrix by name."""
    functions = {"jackknife": jackknife_covariance, "delong": delong_covariance, "unbiased": unbiased_covariance}
    if method not in functions:
        raise ValueError(f"unknown covariance method {method!r}; choose one of {', '.join(COVARIANCE_METHODS)}")
    return functions[method](table)

"""Empirical (trapezoidal) ROC AUC and its case-level pieces.

The empirical AUC is the Mann-Whitney statistic: the mean over (diseased, non-diseased)
pairs of psi = 1 if the diseased case is rated higher, 1/2 if tied, 0 otherwise. Every
covariance estimator here works from the psi matrices of each (treatment, reader).
"""

from __future__ import annotations

import numpy as np

from core.mrmc.ratings import RatingsTable


def psi_matrices(table: RatingsTable) -> np.ndarray:
    """psi for every (treatment, reader): shape (T, R, n_positive, n_negative)."""
    pos = table.ratings[:, :, table.truth][..., :, None]
    neg = table.ratings[:, :, ~table.truth][..., None, :]
    return (pos > neg) + 0.5 * (pos == neg)


def empirical_auc(table: RatingsTable) -> np.ndarray:
    """AUC of every (treatment, reader): shape (T, R)."""
    return psi_matrices(table).mean(axis=(-2, -1))


def roc_points(ratings: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical ROC operating points (FPF, TPF) from the strictest threshold to the laxest."""
    thresholds = np.unique(ratings)[::-1]
    pos, neg = ratings[truth], ratings[~truth]
    tpf = [0.0] + [float((pos >= t).mean()) for t in thresholds]
    fpf = [0.0] + [float((neg >= t).mean()) for t in thresholds]
    return np.array(fpf), np.array(tpf)

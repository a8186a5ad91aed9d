"""Empirical ROC curves of an MRMC ratings table, one panel per treatment (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

from core.mrmc.auc import empirical_auc, roc_points
from core.mrmc.ratings import RatingsTable


def plot_roc(table: RatingsTable, path: str | Path) -> Path:
    """Each reader's empirical ROC (thin) and the pooled-over-readers mean AUC in the title."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    auc = empirical_auc(table)
    fig, axes = plt.subplots(1, len(table.treatments), figsize=(4 * len(table.treatments), 4), squeeze=False)
    for i, (ax, treatment) in enumerate(zip(axes[0], table.treatments, strict=True)):
        for j, reader in enumerate(table.readers):
            fpf, tpf = roc_points(table.ratings[i, j], table.truth)
            ax.plot(fpf, tpf, marker=".", lw=1, label=f"{reader} ({auc[i, j]:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls="--")
        ax.set_title(f"{treatment}: mean AUC {auc[i].mean():.3f}")
        ax.set_xlabel("false-positive fraction")
        ax.set_ylabel("true-positive fraction")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

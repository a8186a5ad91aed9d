"""How a generator's COVID-19 probability may be shown: with its measured reliability, or not at all.

Why: the heads were once shown as "COVID-19 81%" and "COVID-19 7%" for the same film from two
variants while measuring chance level on films from other hospitals. A number on screen reads as
a finding, so every place that shows one (compare mode, ``restore``'s table, exports) goes
through ``probability_display``: the number always travels with the AUC measured on sources the
head never saw (``r2c-review train-heads``, recorded in the model's manifest) and the words
"research use, not for diagnosis"; below ``MIN_SHOWN_AUC``, or when never measured, the number
is withheld unless the user asked to see it anyway, and the reason is given instead. Reader
screens of a study never show it (they do not call this at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_SHOWN_AUC = 0.75
RESEARCH_ONLY = "research use, not for diagnosis"


@dataclass(frozen=True)
class ProbabilityDisplay:
    """What to show for one probability: ``text`` (number or withheld note), and why."""

    probability: float
    shown: bool
    text: str  # short, for a caption or a table cell
    detail: str  # one sentence with the measured AUC and the research-use note, for a tooltip or a log
    auc: float | None  # out-of-source AUC, None when never measured
    auc_ci95: tuple[float, float] | None

    def csv_value(self) -> str:
        """The number for a table file, empty when withheld."""
        return f"{self.probability:.5f}" if self.shown else ""


def head_reliability(provenance: dict[str, Any] | None) -> tuple[float | None, tuple[float, float] | None]:
    """(out-of-source AUC, its 95% interval) from a manifest's provenance, or (None, None)."""
    head = (provenance or {}).get("covid_head") or {}
    auc = head.get("out_of_source_auc")
    ci = head.get("out_of_source_ci95")
    if not isinstance(auc, (int, float)):
        return None, None
    return float(auc), (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None


def probability_display(probability: float, provenance: dict[str, Any] | None, show_unreliable: bool = False
                        ) -> ProbabilityDisplay:
    """The display rule for a COVID-19 probability of a model with this manifest ``provenance``."""
    auc, ci = head_reliability(provenance)
    if auc is None:
        measured = "its accuracy on films from other hospitals was never measured"
    else:
        span = f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        measured = f"AUC {auc:.2f}{span} on films from hospitals it never trained on"
    reliable = auc is not None and auc >= MIN_SHOWN_AUC
    shown = reliable or show_unreliable
    if shown:
        quality = f"AUC {auc:.2f}" if auc is not None else "unmeasured"
        text = f"COVID-19 {probability:.0%} ({quality})"
        why = "" if reliable else f"; shown on request although below the {MIN_SHOWN_AUC:.2f} needed to show it"
        detail = f"COVID-19 probability {probability:.1%}: {measured}{why}; {RESEARCH_ONLY}."
    else:
        text = "COVID-19: withheld"
        detail = (f"COVID-19 probability withheld: {measured}, below the {MIN_SHOWN_AUC:.2f} needed to show it "
                  f"(a setting shows it anyway); {RESEARCH_ONLY}.") if auc is not None else (
                  f"COVID-19 probability withheld: {measured} (a setting shows it anyway); {RESEARCH_ONLY}.")
    return ProbabilityDisplay(probability, shown, text, detail, auc, ci)

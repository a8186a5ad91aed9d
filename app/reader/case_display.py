"""What the reader sees of one query, as plain data (no Qt).

Kept apart from the widget (``app.reader.case_view``) so that the study service, which builds it
from the engine's reading session, does not depend on widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUESTION = "Which image would you prefer for diagnosis?"


@dataclass(frozen=True)
class CaseDisplay:
    """What the reader sees of one query (nothing that names a candidate)."""

    images: list[np.ndarray]  # in pane order; same size; display levels in [0, 1] or 8-bit
    position: int  # 1-based, in this reader's order
    total: int
    disease_label: str | None = None  # shown when the study says so
    previous_choice: int | None = None  # pane index the reader chose before (revisiting)
    can_next: bool = False  # moving forward is allowed (the case was answered already)
    question: str = QUESTION
    labels: list[str] | None = None  # neutral pane labels ("A", "B"... or "1", "2"...); default numbers
    ask_confidence: bool = False  # the study wants a 1-5 confidence rating with the vote
    previous_confidence: int | None = None  # the rating given with ``previous_choice``
    rates_disease: bool = False  # diagnosis study: one image, the 1-5 scale is the disease rating
    # A real-or-synthetic study: one film, judged by one of these answers; the choice is the answer's index
    answers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.rates_disease or self.answers) and len(self.images) != 1:
            raise ValueError("a disease rating or a real/synthetic judgement is given on one image")

    def pane_labels(self) -> list[str]:
        return list(self.labels) if self.labels else [str(i + 1) for i in range(len(self.images))]

"""The app's one door to the study engine (``core.study``): plain data in, plain data out.

Pages never touch the engine directly; they call this service from workers (every method
may do database or file I/O and is blocking). It turns engine objects into the small view
models below, which carry nothing a blinded page must not show: a reading handle hands
out pane images in the stored order and takes votes by pane index, and the variant
behind a pane never leaves the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.reader.case_view import CaseDisplay


@dataclass(frozen=True)
class ReaderSummary:
    id: object
    name: str
    assigned: int
    answered: int


@dataclass(frozen=True)
class StudySummary:
    id: object
    name: str
    kind: str  # "restoration" or "segmentation"
    cases: int
    candidates: list[str]  # display names, original first (admin only)
    readers: list[ReaderSummary]
    ready: bool  # renditions precomputed, reading can start
    precomputed: tuple[int, int] = (0, 0)  # done, total renditions
    facts: list[tuple[str, str]] = field(default_factory=list)  # (label, value) for the admin overview

    @property
    def reading_note(self) -> str:
        if not self.ready:
            return ("This study is not ready for reading yet: its images are still being prepared "
                    "(Study administration).")
        return f"{self.cases} cases; each shows several versions of one X-ray side by side, in random order."


@dataclass(frozen=True)
class RatioCell:
    ratio: float
    count: int
    low: float
    high: float

    def text(self) -> str:
        return f"{self.ratio:.1%} ({self.count})\n[{self.low:.1%}–{self.high:.1%}]"


@dataclass(frozen=True)
class RatioRow:
    name: str
    votes: int
    cells: list[RatioCell]


@dataclass(frozen=True)
class StatsView:
    columns: list[str]
    rows: list[RatioRow]  # one per reader, then "Overall"
    tests: list[tuple[str, str]]  # (name, one-line result)
    summary: str


@dataclass
class StudySpec:
    """What the "New study" dialog collects."""

    name: str
    source: Path  # folder of images or CSV of cases
    variants: list[tuple[str, int | None]]  # (variant id, passes); the original is always added
    readers: list[str]
    design: str  # "split", "all", "anchor"
    seed: int = 0
    show_label: bool = True
    kind: str = "restoration"
    anchor_cases: int = 0


Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class ReadingHandle:
    """One reader's session on one study (see the module docstring); methods block."""

    total: int

    def resume_position(self) -> int:
        raise NotImplementedError

    def remember_position(self, position: int) -> None:
        raise NotImplementedError

    def case(self, position: int) -> CaseDisplay:
        raise NotImplementedError

    def vote(self, position: int, pane: int, elapsed_ms: int) -> None:
        raise NotImplementedError


def _engine():  # -> module core.study
    """The study engine, imported on first use (in a worker), or a one-line error."""
    try:
        import core.study as study
    except ImportError as exc:
        from core.errors import StudyStateError

        raise StudyStateError(None, f"the study engine is not available in this installation ({exc})") from None
    return study


class StudyService:
    """Blocking calls into ``core.study`` for one database (see the module docstring)."""

    def __init__(self, database: str | None) -> None:
        self.database = database

    def list_studies(self) -> list[StudySummary]:
        _engine()
        raise NotImplementedError

    def open_reading(self, study_id: object, reader_id: object) -> ReadingHandle:
        _engine()
        raise NotImplementedError

    def create_study(self, spec: StudySpec) -> object:
        _engine()
        raise NotImplementedError

    def precompute(self, study_id: object, progress: Progress, cancelled: Cancelled) -> None:
        _engine()
        raise NotImplementedError

    def statistics(self, study_id: object) -> StatsView:
        _engine()
        raise NotImplementedError

    def export(self, study_id: object, folder: Path) -> list[Path]:
        _engine()
        raise NotImplementedError

"""The app's one door to the study engine (``core.study``): plain data in, plain data out.

Pages never touch the engine directly; they call this service from workers (every method
may do database or file I/O and is blocking). It turns engine objects into the small view
models below, which carry nothing a blinded page must not show: a reading handle hands
out pane images in the stored order and takes votes by pane index, and the variant
behind a pane never leaves the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.reader.case_display import CaseDisplay
from core.errors import StudyStateError  # a small module: no engine, no torch


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
    protected: bool = False  # reader PINs and an administrator password (core.study.credentials)

    @property
    def reading_note(self) -> str:
        if not self.ready:
            return ("This study is not ready for reading yet: its images are still being prepared "
                    "(Study administration).")
        note = f"{self.cases} cases; each shows several versions of one X-ray side by side, in random order."
        if self.protected:
            return note + " You will be asked for your PIN."
        return note + ("\n\nThis study has no passwords: anyone can read as any reader. The study administrator "
                       "can set PINs in Study administration (Set passwords…).")


@dataclass(frozen=True)
class RatioCell:
    ratio: float
    count: int
    low: float
    high: float

    auc: bool = False  # an AUC (diagnosis study) rather than a selection ratio
    empty: bool = False  # no votes behind it: "0.0% [0.0%-0.0%]" would claim a result that does not exist

    def text(self) -> str:
        if self.empty:
            return "–\nno votes"
        if self.auc:
            return f"AUC {self.ratio:.3f}\n[{self.low:.3f}–{self.high:.3f}]"
        return f"{self.ratio:.1%} ({self.count})\n[{self.low:.1%}–{self.high:.1%}]"


@dataclass(frozen=True)
class RatioRow:
    name: str
    votes: int
    cells: list[RatioCell]


@dataclass(frozen=True)
class StatsView:
    columns: list[str]
    rows: list[RatioRow]  # one per reader, then "Overall" (and the readers-and-cases-random row)
    tests: list[tuple[str, str]]  # (name, one-line result)
    summary: str
    headers: list[str] | None = None  # column headings with the chance level, e.g. "Original (chance 25.0%)"


@dataclass
class NewStudyRequest:
    """What the "New study" dialog collects."""

    name: str
    source: Path  # folder of images or CSV of cases
    variants: list[tuple[str, int | None]]  # (candidate spec: variant id, "clahe", "histeq"; passes or None)
    # the original is always added first
    readers: list[str]
    design: str  # "split", "all", "anchor"
    seed: int = 0
    show_label: bool = True
    kind: str = "restoration"
    anchor_cases: int = 0
    qc_repeats: int = 0
    pane_labels: str = "letters"
    ask_confidence: bool = False  # readers rate their confidence (1-5) before confirming
    presentation: str = "native"  # "native" (the film's resolution, up to 1024 px) or "paper" (256 px)
    washout_days: float | None = None  # diagnosis studies: least days between a reader's sessions
    admin_password: str | None = None  # with reader_pins: a protected study (None: open, anyone may read)
    reader_pins: dict[str, str] = field(default_factory=dict)


Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class ReadingHandle:
    """One reader's session on one study (see the module docstring); methods block.

    Positions are 0-based queries, ``total`` being the end-of-list screen. Where the reader is
    lives in the study database (not on this machine), so ``resume_position`` is the same on
    every workstation.
    """

    total: int
    asks_confidence: bool = False  # every vote needs a confidence rating (1-5)

    def resume_position(self) -> int:
        raise NotImplementedError

    def remember_position(self, position: int) -> None:
        raise NotImplementedError

    def case(self, position: int) -> CaseDisplay:
        raise NotImplementedError

    def vote(self, position: int, pane: int, elapsed_ms: int, confidence: int | None = None) -> None:
        raise NotImplementedError


AUTHENTICITY_ANSWERS = ("Real", "Synthetic")  # a real-or-synthetic study's answers, in judgement order (0, 1)


class StudyReadingError(Exception):
    """A study this reader mode cannot present."""


class AdminLockedError(StudyStateError):
    """A protected study's administration was asked for before its administrator password."""

    def __init__(self) -> None:
        super().__init__(None, "This study is protected: unlock it with the administrator password first.")


def _engine():  # -> module core.study
    """The study engine, imported on first use (in a worker: it loads torch and the statistics stack)."""
    import core.study as study

    return study


class EngineReadingHandle(ReadingHandle):
    """A :class:`core.study.ReadingSession` seen through the page's eyes (pane indices only)."""

    def __init__(self, session) -> None:  # session: core.study.ReadingSession
        self._session = session
        self.total = session.total
        self.asks_confidence = session.asks_confidence
        if session.is_diagnosis and session.rating_range != (1, 5):
            lo, hi = session.rating_range
            raise StudyReadingError(f"this study rates images {lo}-{hi}; the app's reader mode rates 1-5 "
                                    "(read it through the engine API or make the study with the 5-point scale)")

    def resume_position(self) -> int:
        """Where this reader last was on any machine (stored), else the first unanswered case."""
        return self._session.position

    def remember_position(self, position: int) -> None:
        """Store the reader's move in the study database (one small committed update)."""
        self._session.move_to(position)

    def case(self, position: int) -> CaseDisplay:
        view = self._session.view(position)
        if getattr(self._session, "is_authenticity", False):  # one film, judged real (0) or synthetic (1)
            return CaseDisplay(images=[p.image for p in view.panes], position=position + 1, total=view.total,
                               previous_choice=view.rating, can_next=view.chosen is not None,
                               question=self._session.question, labels=[p.label for p in view.panes],
                               ask_confidence=self.asks_confidence, previous_confidence=view.confidence,
                               answers=AUTHENTICITY_ANSWERS)
        rating = self._session.is_diagnosis
        return CaseDisplay(images=[p.image for p in view.panes], position=position + 1, total=view.total,
                           disease_label=view.disease_label, previous_choice=view.chosen_index,
                           can_next=view.chosen is not None, question=self._session.question,
                           labels=[p.label for p in view.panes], ask_confidence=self.asks_confidence,
                           previous_confidence=view.rating if rating else view.confidence, rates_disease=rating)

    def vote(self, position: int, pane: int, elapsed_ms: int, confidence: int | None = None) -> None:
        """A pane choice, or for a diagnosis study the disease rating (``confidence`` carries it)."""
        if self._session.is_diagnosis:
            self._session.rate(confidence, index=position, elapsed_ms=elapsed_ms)
        elif getattr(self._session, "is_authenticity", False):
            self._session.judge(pane == 1, confidence, index=position, elapsed_ms=elapsed_ms)
        else:
            self._session.vote(pane, confidence, index=position, elapsed_ms=elapsed_ms)

    def progress(self) -> tuple[int, int]:
        return self._session.progress


class StudyService:
    """Blocking calls into ``core.study`` for one database (see the module docstring)."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self._store = None
        self._lock = threading.Lock()
        self._unlocked: set[str] = set()  # protected studies whose administrator password was given here

    def store(self):  # -> core.study.Store
        with self._lock:
            if self._store is None:
                self._store = _engine().open_store(self.database)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def location(self) -> str:
        return self.store().display_url

    # -- listing ---------------------------------------------------------------------------

    def list_studies(self) -> list[StudySummary]:
        study = _engine()
        store = self.store()
        out = []
        for summary in study.list_studies(store):
            cached, total = study.rendition_status(store, summary.id)
            readers = [ReaderSummary(r.name, r.name, r.total, r.done) for r in summary.reader_progress]
            design = {"split": "cases split between readers", "all": "every reader reads every case",
                      "anchor": f"{summary.anchor_cases} shared anchor cases + split blocks"}.get(summary.design,
                                                                                                  summary.design)
            facts = [
                ("Type", "diagnosis accuracy (MRMC ROC)" if summary.kind == "diagnosis"
                 else f"{summary.kind} preference"),
                ("Cases", str(summary.cases)),
                ("Candidates", ", ".join(summary.candidate_names)),
                ("Readers", ", ".join(r.name for r in summary.reader_progress)),
                ("Assignment", design + (f"; {summary.qc_repeats} hidden QC repeat(s) per reader"
                                         if summary.qc_repeats else "")),
                ("Disease label", "shown to readers" if summary.show_label else "hidden"),
                ("Confidence", "rated 1–5 with every answer" if summary.ask_confidence else "not asked"),
                ("Presentation", f"{summary.presentation}, up to {summary.presentation_size} px, panes labelled "
                                 f"with {summary.pane_labels}"),
                ("Access", "reader PINs and an administrator password" if summary.protected
                 else "open: no passwords, anyone may read as any reader"),
                ("Seed", str(summary.seed)),
                ("Votes", str(summary.votes)),
                ("Database", store.display_url),
            ]
            out.append(StudySummary(summary.id, summary.name, summary.kind, summary.cases,
                                    list(summary.candidate_names), readers, cached == total, (cached, total), facts,
                                    protected=summary.protected))
        return out

    # -- reading ---------------------------------------------------------------------------

    def open_reading(self, study_id: object, reader_id: object, pin: str | None = None) -> ReadingHandle:
        """The reader's session once their PIN is checked (an open study needs none); votes record them."""
        from core.study.credentials import authenticate_reader

        study = _engine()
        store = self.store()
        auth = authenticate_reader(store, study_id, str(reader_id), pin)
        return EngineReadingHandle(study.ReadingSession(store, study_id, str(reader_id), auth=auth))

    # -- the administrator -----------------------------------------------------------------

    def unlock_admin(self, study_id: object, password: str | None) -> None:
        """Check a protected study's administrator password; its administration stays open in this app run."""
        from core.study.credentials import authenticate_admin

        authenticate_admin(self.store(), study_id, password)
        self._unlocked.add(str(study_id))

    def admin_unlocked(self, study_id: object) -> bool:
        """Whether administration of this study is open here (not cached for open studies: they can change)."""
        from core.study.credentials import is_protected

        return str(study_id) in self._unlocked or not is_protected(self.store(), study_id)

    def unlocked_here(self, study_id: object) -> bool:
        """The administrator password of this study was given in this app run (no database access)."""
        return str(study_id) in self._unlocked

    def _require_admin(self, study_id: object) -> None:
        if not self.admin_unlocked(study_id):
            raise AdminLockedError()

    def check_admin_password(self, study_id: object, password: str | None) -> None:
        """Raise unless ``password`` is the study's administrator password (or the study is open)."""
        from core.study.credentials import authenticate_admin

        authenticate_admin(self.store(), study_id, password)

    def set_passwords(self, study_id: object, admin_password: str, reader_pins: dict[str, str],
                      current_admin_password: str | None = None) -> None:
        """Set the administrator password and every reader's PIN (an open study: whoever sets them first)."""
        from core.study.credentials import StudyCredentials, set_credentials

        set_credentials(self.store(), study_id, StudyCredentials(admin_password, reader_pins), current_admin_password)
        self._unlocked.add(str(study_id))

    # -- administration --------------------------------------------------------------------

    def create_study(self, spec: NewStudyRequest, progress: Progress | None = None) -> object:
        from core.study.presentation import DEFAULT_SIZE

        study = _engine()
        if spec.kind == "authenticity":
            return self._create_authenticity(spec, progress)
        candidates = ["original"] + [f"{vid}:{n}" if n else vid for vid, n in spec.variants]
        core_spec = study.StudySpec(
            name=spec.name, cases=study.read_cases(spec.source),
            candidates=study.parse_candidates(candidates, study.installed_default_iterations()),
            readers=spec.readers, kind=spec.kind, design=spec.design, anchor_cases=spec.anchor_cases,
            qc_repeats=spec.qc_repeats, seed=spec.seed, show_label=spec.show_label, pane_labels=spec.pane_labels,
            ask_confidence=spec.ask_confidence, washout_days=spec.washout_days, presentation=spec.presentation,
            presentation_size=DEFAULT_SIZE[spec.presentation],
            rating_scale="5-point" if spec.kind == "diagnosis" else None)
        creds = None
        if spec.admin_password is not None:
            from core.study.credentials import StudyCredentials

            creds = StudyCredentials(spec.admin_password, dict(spec.reader_pins))
        study_id = study.create_study(self.store(), core_spec, progress=progress, credentials=creds).id
        self._unlocked.add(str(study_id))  # its creator is its administrator
        return study_id

    def _create_authenticity(self, spec: NewStudyRequest, progress: Progress | None = None) -> object:
        """A real-or-synthetic study: each film as it is, truth from the case list or the film's synthetic mark."""
        from core.study.authenticity import label_authenticity
        from core.study.definition import ORIGINAL

        study = _engine()
        core_spec = study.StudySpec(
            name=spec.name, cases=label_authenticity(study.read_cases(spec.source)), candidates=[ORIGINAL],
            readers=spec.readers, kind="authenticity", design=spec.design, anchor_cases=spec.anchor_cases,
            qc_repeats=0, seed=spec.seed, show_label=False, pane_labels=spec.pane_labels,
            ask_confidence=spec.ask_confidence, presentation="paper", presentation_size=512)
        creds = None
        if spec.admin_password is not None:
            from core.study.credentials import StudyCredentials

            creds = StudyCredentials(spec.admin_password, dict(spec.reader_pins))
        study_id = study.create_study(self.store(), core_spec, progress=progress, credentials=creds).id
        self._unlocked.add(str(study_id))
        return study_id

    def import_votes(self, study_id: object, csv_path: Path) -> int:
        """Merge another site's ``votes.csv`` into this study (all rows or none); returns how many."""
        study = _engine()
        store = self.store()
        self._require_admin(study_id)
        return study.import_votes(store, csv_path, study.load_study(store, study_id).name)

    def precompute(self, study_id: object, progress: Progress, cancelled: Cancelled) -> bool:
        """Render every pane picture; returns False when cancelled (what was made stays cached)."""
        self._require_admin(study_id)
        result = _engine().precompute(self.store(), study_id, progress=progress, cancelled=cancelled)
        return not result.cancelled

    def statistics(self, study_id: object) -> StatsView:
        study = _engine()
        self._require_admin(study_id)
        kind = study.load_study(self.store(), study_id).kind
        if kind == "diagnosis":
            return self._diagnosis_statistics(study_id)
        if kind == "authenticity":
            return self._authenticity_statistics(study_id)
        stats = study.study_stats(self.store(), study_id)
        rows = [RatioRow(r.reader, r.n, [RatioCell(c.ratio or 0.0, c.count, c.ci_low or 0.0, c.ci_high or 0.0,
                                                   empty=c.ratio is None) for c in r.cells]) for r in stats.rows]
        if stats.inference is not None:
            rows.append(RatioRow("Overall, readers & cases random", stats.overall.n,
                                 [RatioCell(s.share or 0.0, cell.count, s.ci_low or 0.0, s.ci_high or 0.0,
                                            empty=s.share is None)
                                  for s, cell in zip(stats.inference.shares, stats.overall.cells, strict=True)]))
        summary = (f"{stats.overall.n} counted answers from {len(stats.rows) - 1} reader(s); chance = "
                   f"{stats.chance_level:.1%} per candidate ({len(stats.candidates)} panes). Cells: selection ratio "
                   "(count) and 95% Wilson interval (descriptive); the last row's interval treats readers and cases "
                   "as random. Only each reader's latest answer per case counts, hidden QC repeats are left out.")
        return StatsView(stats.candidates, rows, study.statistics_items(stats), summary,
                         study.column_headers(stats))

    def _authenticity_statistics(self, study_id: object) -> StatsView:
        """Real or synthetic: each reader's accuracy, sensitivity for synthetic films, specificity and the
        share of synthetic films judged real (Wilson), then the same with readers and cases random."""
        from core.study.authenticity import FIGURE_NAMES, FIGURES, authenticity_results

        res = authenticity_results(self.store(), study_id)
        rows = [RatioRow(r.reader, r.n, [RatioCell(c.ratio or 0.0, c.count, c.ci_low or 0.0, c.ci_high or 0.0,
                                                   empty=c.ratio is None)
                                         for c in (r.cells[f] for f in FIGURES)]) for r in res.readers]
        overall = [res.overall[f] for f in FIGURES]
        counts = [sum(r.cells[f].count for r in res.readers) for f in FIGURES]
        rows.append(RatioRow("Overall, readers & cases random", res.n_real + res.n_synthetic,
                             [RatioCell(0.0, n, 0.0, 0.0, empty=True) if o is None else
                              RatioCell(o.share or 0.0, n, o.ci_low or 0.0, o.ci_high or 0.0)
                              for o, n in zip(overall, counts, strict=True)]))
        tests = [(f"{FIGURE_NAMES[f]} vs 50%", "no judgements" if o is None else
                  f"{o.share:.1%} [{o.ci_low:.1%}–{o.ci_high:.1%}], p = {o.p_value:.3g} ({o.method})")
                 for f, o in zip(FIGURES, overall, strict=True)]
        summary = (f"Real or synthetic? {res.n_real} judgements of real films, {res.n_synthetic} of synthetic films, "
                   f"{len(res.readers)} reader(s); chance = 50%. Cells: share (count) with a 95% Wilson interval; the "
                   "last row's interval treats readers and cases as random. Each reader's latest judgement counts.")
        return StatsView([FIGURE_NAMES[f] for f in FIGURES], rows, tests, summary)

    def _diagnosis_statistics(self, study_id: object) -> StatsView:
        """Reader AUCs (normal 95% CI over cases) and the OR mean per modality; the analysis as text."""
        from core.mrmc.obuchowski_rockette import reader_auc_intervals
        from core.study.diagnosis import diagnosis_results

        results = diagnosis_results(self.store(), study_id)
        res = results.random
        ci = reader_auc_intervals(res)
        rows = [RatioRow(reader, results.table.n_positive + results.table.n_negative,
                         [RatioCell(float(res.auc[i, j]), 0, float(ci[i, j, 0]), float(ci[i, j, 1]), auc=True)
                          for i in range(len(res.treatments))]) for j, reader in enumerate(res.readers)]
        rows.append(RatioRow("Mean, readers & cases random", results.table.n_positive + results.table.n_negative,
                             [RatioCell(m.estimate, 0, m.ci[0], m.ci[1], auc=True) for m in res.means]))
        return StatsView(res.treatments, rows, results.items(), results.headline())

    def export(self, study_id: object, folder: Path) -> list[Path]:
        self._require_admin(study_id)
        return list(_engine().export_study(self.store(), study_id, folder).files)

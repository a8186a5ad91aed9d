"""The "real or synthetic?" study: its case labels, analysis and export.

Each query shows one film, real or synthetic (the case label is the truth, hidden from readers);
the reader judges it real or synthetic (``ReadingSession.judge``: the vote's ``rating`` holds
0 = real, 1 = synthetic) with an optional 1-5 confidence. The analysis, each reader's latest
judgement of each film counting:

* per reader (descriptive, Wilson intervals): accuracy, sensitivity for synthetic films (synthetic
  films judged synthetic), specificity (real films judged real), and the share of synthetic films
  judged real (1 - sensitivity: how often a synthetic film passed for a real one);
* overall, readers and cases random (``core.study.inference.binary_share``: the reader x case
  two-way bootstrap interval and the t-test of the reader-level figures against 50%, as the
  preference study's shares): the same four figures. Accuracy at 50% means readers cannot tell
  synthetic films from real ones; the test says whether they can.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from core.errors import StudyStateError
from core.study.definition import AUTHENTICITY_LABELS, CaseSpec
from core.study.inference import AnalysisSettings, ShareInference, binary_share
from core.study.manage import load_study
from core.study.reading import SYNTHETIC
from core.study.stats import Cell, wilson
from core.study.store import Assignment, Store, Vote

CHANCE = 0.5
JUDGEMENT_COLUMNS = ["reader", "case", "case_sha256", "truth", "judged", "correct", "confidence", "decision_ms"]
FIGURES = ("accuracy", "sensitivity", "specificity", "synthetic_judged_real")
FIGURE_NAMES = {"accuracy": "Accuracy", "sensitivity": "Sensitivity for synthetic films",
                "specificity": "Specificity (real films judged real)",
                "synthetic_judged_real": "Synthetic films judged real"}


def label_authenticity(cases: list[CaseSpec]) -> list[CaseSpec]:
    """Cases of a real-or-synthetic study: a label real/synthetic given in the case list is kept; any other
    film is synthetic when it is marked so (file name, PNG text chunk, DICOM descriptions), else real."""
    from core.synthesize import is_marked_synthetic

    out = []
    for c in cases:
        label = c.label if c.label in AUTHENTICITY_LABELS else ("synthetic" if is_marked_synthetic(c.path)
                                                                else "real")
        out.append(CaseSpec(c.key, c.path, label, c.sha256, c.tier))
    return out


@dataclass(frozen=True)
class Judgement:
    reader: str
    case: str
    case_sha256: str
    synthetic: bool  # the truth
    judged_synthetic: bool
    confidence: int | None
    decision_ms: int | None

    @property
    def correct(self) -> bool:
        return self.synthetic == self.judged_synthetic


def judgements(store: Store, study: str | int) -> list[Judgement]:
    """Every reader's latest judgement of every film they judged."""
    info = load_study(store, study)
    if info.kind != "authenticity":
        raise StudyStateError(info.name, "not a real-or-synthetic study")
    readers = {r.id: r.name for r in info.readers}
    cases = {c.id: c for c in info.cases}
    with store.read() as s:
        rows = s.execute(select(Vote.assignment_id, Vote.rating, Vote.confidence, Vote.decision_ms,
                                Assignment.reader_id, Assignment.case_id)
                         .join(Assignment, Vote.assignment_id == Assignment.id)
                         .where(Assignment.study_id == info.id).order_by(Vote.voted_at, Vote.id)).all()
    latest = {}
    for a_id, rating, confidence, ms, reader, case in rows:
        if rating is not None:
            c = cases[case]
            latest[a_id] = Judgement(readers[reader], c.key, c.file_sha256, c.label == "synthetic",
                                     int(rating) == SYNTHETIC, confidence, ms)
    return list(latest.values())


def _hits(items: list[Judgement], figure: str) -> tuple[list[Judgement], list[bool]]:
    if figure == "accuracy":
        return items, [j.correct for j in items]
    if figure == "sensitivity":
        sub = [j for j in items if j.synthetic]
        return sub, [j.judged_synthetic for j in sub]
    if figure == "specificity":
        sub = [j for j in items if not j.synthetic]
        return sub, [not j.judged_synthetic for j in sub]
    sub = [j for j in items if j.synthetic]
    return sub, [not j.judged_synthetic for j in sub]


@dataclass
class ReaderRow:
    reader: str
    n: int
    cells: dict[str, Cell]  # figure -> count, n, share with its Wilson interval
    mean_confidence: float | None


@dataclass
class AuthenticityResults:
    study: str
    settings: AnalysisSettings
    n_real: int
    n_synthetic: int
    readers: list[ReaderRow]
    overall: dict[str, ShareInference | None]  # figure -> readers and cases random

    def to_dict(self) -> dict:
        def cell(c: Cell) -> dict:
            return {"count": c.count, "n": c.n, "share": c.ratio, "ci_low": c.ci_low, "ci_high": c.ci_high}

        return {
            "study": self.study, "kind": "authenticity", "chance": CHANCE,
            "real_judgements": self.n_real, "synthetic_judgements": self.n_synthetic,
            "confidence": self.settings.confidence, "replicates": self.settings.replicates,
            "per_reader": [{"reader": r.reader, "n": r.n, "mean_confidence": r.mean_confidence,
                            **{f: cell(c) for f, c in r.cells.items()}} for r in self.readers],
            "overall_readers_and_cases_random": {
                f: None if s is None else {"share": s.share, "ci_low": s.ci_low, "ci_high": s.ci_high,
                                           "p_value_vs_50pct": s.p_value, "direction": s.direction,
                                           "method": s.method}
                for f, s in self.overall.items()},
        }

    def text(self) -> str:
        pct = int(round(self.settings.confidence * 100))
        lines = [f"Study {self.study!r} (real or synthetic?): {len(self.readers)} reader(s), {self.n_real} judgements "
                 f"of real films and {self.n_synthetic} of synthetic films. Chance = 50%.", "",
                 f"Overall (readers and cases random; {pct}% reader x case bootstrap interval, t-test of the reader "
                 "figures against 50%):"]
        for f in FIGURES:
            s = self.overall[f]
            if s is None:
                lines.append(f"  {FIGURE_NAMES[f]}: no judgements")
                continue
            lines.append(f"  {FIGURE_NAMES[f]}: {_pct(s.share)} [{_pct(s.ci_low)} to {_pct(s.ci_high)}], "
                         f"p = {s.p_value:.3g} vs 50% ({s.method})")
        lines += ["", f"Per reader (Wilson {pct}% intervals; descriptive):"]
        for r in self.readers:
            parts = [f"{FIGURE_NAMES[f].lower()} {_cell(r.cells[f])}" for f in FIGURES]
            conf = f", mean confidence {r.mean_confidence:.2f}" if r.mean_confidence is not None else ""
            lines.append(f"  {r.reader} ({r.n} films): " + "; ".join(parts) + conf)
        return "\n".join(lines)

    def markdown(self) -> str:
        head = "| Reader | Films | " + " | ".join(FIGURE_NAMES[f] for f in FIGURES) + " |"
        rows = [head, "|" + "---|" * (len(FIGURES) + 2)]
        for r in self.readers:
            rows.append(f"| {r.reader} | {r.n} | " + " | ".join(_cell(r.cells[f]) for f in FIGURES) + " |")
        cells = []
        for f in FIGURES:
            s = self.overall[f]
            cells.append("–" if s is None else f"{_pct(s.share)} [{_pct(s.ci_low)}, {_pct(s.ci_high)}] "
                                               f"p={s.p_value:.3g}")
        rows.append(f"| Overall (readers and cases random) | {self.n_real + self.n_synthetic} | "
                    + " | ".join(cells) + " |")
        return "\n".join(rows) + "\n\nChance = 50%; p-values test each figure against 50%.\n"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _cell(c: Cell) -> str:
    return "–" if c.ratio is None else f"{_pct(c.ratio)} ({c.count}/{c.n}) [{_pct(c.ci_low)}, {_pct(c.ci_high)}]"


def analyse(items: list[Judgement], study: str, settings: AnalysisSettings | None = None) -> AuthenticityResults:
    """Per-reader and overall figures of a list of judgements (see the module docstring)."""
    settings = settings or AnalysisSettings()
    if not items:
        raise StudyStateError(study, "cannot analyse yet: no judgements")
    per_reader = []
    for name in dict.fromkeys(j.reader for j in items):
        mine = [j for j in items if j.reader == name]
        cells = {}
        for f in FIGURES:
            sub, hits = _hits(mine, f)
            cells[f] = wilson(sum(hits), len(sub), settings.confidence)
        conf = [j.confidence for j in mine if j.confidence is not None]
        per_reader.append(ReaderRow(name, len(mine), cells, sum(conf) / len(conf) if conf else None))
    overall = {}
    for f in FIGURES:
        sub, hits = _hits(items, f)
        overall[f] = binary_share(FIGURE_NAMES[f], [j.reader for j in sub], [j.case for j in sub], hits, CHANCE,
                                  settings)
    return AuthenticityResults(study, settings, sum(not j.synthetic for j in items), sum(j.synthetic for j in items),
                               per_reader, overall)


def authenticity_results(store: Store, study: str | int, settings: AnalysisSettings | None = None
                         ) -> AuthenticityResults:
    info = load_study(store, study)
    return analyse(judgements(store, info.id), info.name, settings)


def export_authenticity(store: Store, study: str | int, out: Path) -> list[Path]:
    """judgements.csv (one row per reader x film, latest judgement), authenticity.json, authenticity.md."""
    items = judgements(store, study)
    path = out / "judgements.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(JUDGEMENT_COLUMNS)
        for j in items:
            writer.writerow([j.reader, j.case, j.case_sha256, "synthetic" if j.synthetic else "real",
                             "synthetic" if j.judged_synthetic else "real", "yes" if j.correct else "no",
                             "" if j.confidence is None else j.confidence,
                             "" if j.decision_ms is None else j.decision_ms])
    results = authenticity_results(store, study)
    from core.study.export import json_safe

    (out / "authenticity.json").write_text(json.dumps(json_safe(results.to_dict()), indent=2) + "\n",
                                           encoding="utf-8")
    (out / "authenticity.md").write_text(results.markdown() + "\n" + results.text() + "\n", encoding="utf-8")
    return [path, out / "authenticity.json", out / "authenticity.md"]

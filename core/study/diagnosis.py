"""Analysis and export of a diagnosis (MRMC ROC) study, through the same code as ``r2c-review mrmc``.

Each reader's latest rating of every (case, modality) forms the ratings table
``reader,treatment,case,truth,rating`` (truth 1 = COVID-19, from the case list; treatment = the
candidate's display name), which ``core.mrmc`` analyses: empirical AUC per reader and modality,
Obuchowski-Rockette with Hillis' df (readers and cases random), plus the fixed-reader and
fixed-case analyses.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from core.errors import StudyStateError
from core.mrmc import MrmcResult, RatingsTable, analyze, ratings_from_records
from core.mrmc.covariance import CovarianceMethod
from core.mrmc.plot import plot_roc
from core.mrmc.ratings import RatingsError
from core.mrmc.report import result_json, result_text
from core.study.manage import load_study
from core.study.store import Assignment, Store, Vote

POSITIVE_LABEL = "COVID-19"
RATING_COLUMNS = ["reader", "treatment", "case", "truth", "rating"]


@dataclass
class DiagnosisResults:
    study: str
    table: RatingsTable
    random: MrmcResult  # readers and cases random (the primary analysis)
    fixed_readers: MrmcResult
    fixed_cases: MrmcResult

    def to_dict(self) -> dict:
        return {"study": self.study, "covariance": self.random.covariance_method,
                "readers_and_cases_random": result_json(self.random),
                "fixed_readers": result_json(self.fixed_readers), "fixed_cases": result_json(self.fixed_cases)}

    def headline(self) -> str:
        t = self.table
        return (f"Diagnosis study (MRMC ROC): {len(t.readers)} readers, {t.n_positive} COVID-19 and "
                f"{t.n_negative} control cases. Cells: empirical AUC [95% CI]; chance AUC = 0.5.")

    def items(self) -> list[tuple[str, str]]:
        """(label, one-line result): the modality differences, each analysis, the chance level."""
        out = [(f"Difference {d.treatments[0]} − {d.treatments[1]}",
                f"{d.estimate:+.4f} (95% CI {d.ci[0]:+.4f} to {d.ci[1]:+.4f}), p = {d.p:.3g} (Obuchowski-Rockette, "
                f"Hillis df {d.df:.1f}; readers and cases random)") for d in self.random.differences]
        for name, res in (("Readers and cases random", self.random), ("Fixed readers", self.fixed_readers),
                          ("Fixed cases", self.fixed_cases)):
            test = res.test
            df = f"{test.df1:g}, {test.df2:.2f}" if test.df2 is not None else f"{test.df1:g}"
            out.append((f"{name}: equal mean AUCs", f"{test.statistic_name}({df}) = {test.statistic:.3f}, "
                                                    f"p = {test.p:.3g}"))
        out.append(("Chance", "AUC 0.5: ratings unrelated to disease"))
        return out

    def text(self) -> str:
        return "\n\n".join([f"Study {self.study!r} (diagnosis, MRMC ROC)", result_text(self.random),
                            "Fixed readers (conclusions for these readers only):", result_text(self.fixed_readers),
                            "Fixed cases (conclusions for these cases only):", result_text(self.fixed_cases)])


def rating_records(store: Store, study: str | int) -> list[tuple[str, str, str, int, float]]:
    """(reader, treatment, case, truth, rating) of every rated query, latest rating counting."""
    info = load_study(store, study)
    if info.kind != "diagnosis":
        raise StudyStateError(info.name, "not a diagnosis study (it has no disease ratings)")
    readers = {r.id: r.name for r in info.readers}
    cases = {c.id: c for c in info.cases}
    names = {c.id: c.display_name for c in info.candidates}
    with store.read() as s:
        rows = s.execute(select(Vote.assignment_id, Vote.candidate_id, Vote.rating, Assignment.reader_id,
                                Assignment.case_id)
                         .join(Assignment, Vote.assignment_id == Assignment.id)
                         .where(Assignment.study_id == info.id).order_by(Vote.voted_at, Vote.id)).all()
    latest = {}
    for a_id, cand, rating, reader, case in rows:
        if rating is not None:
            latest[a_id] = (readers[reader], names[cand], cases[case].key, int(cases[case].label == POSITIVE_LABEL),
                            float(rating))
    return list(latest.values())


def diagnosis_results(store: Store, study: str | int, cov: CovarianceMethod = "jackknife") -> DiagnosisResults:
    """All three analyses; a study not yet fully read is refused, naming what is missing."""
    info = load_study(store, study)
    try:
        table = ratings_from_records(rating_records(store, info.id), f"study {info.name!r}")
        return DiagnosisResults(info.name, table, analyze(table, cov, "random", "random"),
                                analyze(table, cov, "fixed", "random"), analyze(table, cov, "random", "fixed"))
    except RatingsError as exc:
        raise StudyStateError(info.name, f"cannot analyse yet: {exc.reason}") from None
    except ValueError as exc:
        raise StudyStateError(info.name, f"cannot analyse yet: {exc}") from None


def export_diagnosis(store: Store, study: str | int, out: Path) -> list[Path]:
    """ratings.csv (the ``mrmc analyze`` input), mrmc.json, mrmc.txt and roc.png."""
    records = rating_records(store, study)
    ratings = out / "ratings.csv"
    with open(ratings, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(RATING_COLUMNS)
        writer.writerows([r, t, c, truth, f"{rating:g}"] for r, t, c, truth, rating in records)
    results = diagnosis_results(store, study)
    (out / "mrmc.json").write_text(json.dumps(results.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / "mrmc.txt").write_text(results.text() + "\n", encoding="utf-8")
    plot_roc(results.table, out / "roc.png")
    return [ratings, out / "mrmc.json", out / "mrmc.txt", out / "roc.png"]

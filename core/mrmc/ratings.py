"""A fully crossed ratings table (treatment x reader x case) read from a CSV or from records.

The Obuchowski-Rockette analysis here needs the factorial design (every reader rates every
case under every treatment), so anything else is rejected with the file and the reason.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import R2CError

COLUMNS = ("reader", "treatment", "case", "truth", "rating")


class RatingsError(R2CError):
    """A ratings table is malformed or not fully crossed."""


@dataclass(frozen=True)
class RatingsTable:
    """Ratings of every (treatment, reader, case) with the case truth; labels sorted as strings."""

    treatments: list[str]
    readers: list[str]
    cases: list[str]
    truth: np.ndarray  # (cases,) bool, True = diseased
    ratings: np.ndarray  # (treatments, readers, cases) float

    @property
    def n_positive(self) -> int:
        return int(self.truth.sum())

    @property
    def n_negative(self) -> int:
        return int((~self.truth).sum())


def _sort_key(label: str) -> tuple:
    """Numeric labels in numeric order, then the rest alphabetically ("2" before "10")."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def ratings_from_records(records: Iterable[tuple[str, str, str, int, float]],
                         source: str | Path | None = "ratings") -> RatingsTable:
    """Build the table from (reader, treatment, case, truth, rating); raise RatingsError if not crossed."""
    rows = list(records)
    if not rows:
        raise RatingsError(source, "no ratings")
    truth: dict[str, int] = {}
    seen: dict[tuple[str, str, str], float] = {}
    for reader, treatment, case, t, rating in rows:
        if case in truth and truth[case] != t:
            raise RatingsError(source, f"case {case!r} has truth {truth[case]} and {t}")
        truth[case] = t
        key = (treatment, reader, case)
        if key in seen:
            raise RatingsError(source, f"reader {reader!r} rated case {case!r} twice under treatment {treatment!r}")
        seen[key] = rating
    treatments = sorted({k[0] for k in seen}, key=_sort_key)
    readers = sorted({k[1] for k in seen}, key=_sort_key)
    cases = sorted(truth, key=_sort_key)
    if len(treatments) < 2:
        raise RatingsError(source, "at least two treatments (modalities) are needed to compare")
    positives = sum(truth.values())
    if positives == 0 or positives == len(cases):
        raise RatingsError(source, "both diseased (truth 1) and non-diseased (truth 0) cases are needed")
    missing = len(treatments) * len(readers) * len(cases) - len(seen)
    if missing:
        example = next((t, r, c) for t in treatments for r in readers for c in cases if (t, r, c) not in seen)
        raise RatingsError(source, f"not fully crossed: {missing} (treatment, reader, case) ratings missing, "
                                   f"e.g. reader {example[1]!r}, treatment {example[0]!r}, case {example[2]!r}")
    t_index = {t: i for i, t in enumerate(treatments)}
    r_index = {r: i for i, r in enumerate(readers)}
    c_index = {c: i for i, c in enumerate(cases)}
    ratings = np.empty((len(treatments), len(readers), len(cases)))
    for (t, r, c), value in seen.items():
        ratings[t_index[t], r_index[r], c_index[c]] = value
    return RatingsTable(treatments, readers, cases, np.array([truth[c] == 1 for c in cases]), ratings)


def load_ratings_csv(path: str | Path) -> RatingsTable:
    """Read a CSV with the columns reader,treatment,case,truth,rating (others ignored)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            absent = [c for c in COLUMNS if c not in header]
            if absent:
                raise RatingsError(path, f"missing column(s) {', '.join(absent)}; need {','.join(COLUMNS)}")
            records = []
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                records.append(_parse_row(path, line, row))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RatingsError(path, f"cannot read the ratings table ({exc})") from None
    return ratings_from_records(records, path)


def _parse_row(path: Path, line: int, row: dict[str, str]) -> tuple[str, str, str, int, float]:
    for column in COLUMNS:
        if not row.get(column):
            raise RatingsError(path, f"line {line}: empty {column}")
    truth = row["truth"]
    if truth not in ("0", "1"):
        raise RatingsError(path, f"line {line}: truth must be 0 or 1, not {truth!r}")
    try:
        rating = float(row["rating"])
    except ValueError:
        raise RatingsError(path, f"line {line}: rating {row['rating']!r} is not a number") from None
    if not math.isfinite(rating):
        raise RatingsError(path, f"line {line}: rating {row['rating']!r} is not finite")
    return row["reader"], row["treatment"], row["case"], int(truth), rating

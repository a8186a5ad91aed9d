"""The rules another site's votes must meet before any is merged (vote import, issue 12).

``core.study.export.import_votes`` parses and matches each row; these checks come on top,
each raising ``ValueError`` with the reason for one row (or returning the problems of the
whole file), so that the import stays all-or-nothing with one message naming every bad row:

* the study fingerprint is mandatory (a blank or missing one would let votes of a
  differently defined study in);
* confidence only in a study that asks for it (and then on every vote);
* timestamps inside the study's lifetime: not in the future, not long before the study
  existed, and displayed no later than voted;
* one first vote per query: a vote that amends nothing on a query that already has a vote
  (in the file or the database) is a second, independent answer;
* every text that reaches a column fits that column's declared length, and every number its
  32-bit column, checked here so that
  SQLite (which does not enforce lengths) and PostgreSQL (which fails mid-transaction) give
  the same clear error.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from core.study.store import Case, Reader, Study, Vote

# A site may set up its copy of a study after the first site began voting; a year covers that.
EARLIEST_BEFORE_CREATION = timedelta(days=366)
CLOCK_SKEW = timedelta(days=1)

# CSV column -> the schema column whose length bounds it.
_LENGTH_COLUMNS = {
    "study": Study.__table__.c.name,
    "study_fingerprint": Study.__table__.c.fingerprint,
    "vote_uid": Vote.__table__.c.uid,
    "amends_vote_uid": Vote.__table__.c.uid,
    "reader": Reader.__table__.c.name,
    "case": Case.__table__.c.key,
    "case_sha256": Case.__table__.c.file_sha256,
    "origin": Vote.__table__.c.origin,
}


def column_length(column) -> int | None:
    return getattr(column.type, "length", None)


def check_lengths(get: dict[str, str]) -> None:
    """Every value bound for (or matched against) a length-limited column fits it."""
    for name, column in _LENGTH_COLUMNS.items():
        limit = column_length(column)
        value = get.get(name, "")
        if limit is not None and len(value) > limit:
            raise ValueError(f"{name} is {len(value)} characters long; the study database allows at most {limit}")


INT32_MAX = 2**31 - 1  # Integer columns are 32-bit on PostgreSQL


def check_integers(checked: dict) -> None:
    """Whole numbers bound for 32-bit columns fit them (PostgreSQL would fail mid-transaction)."""
    for name in ("decision_ms", "confidence", "rating"):
        value = checked.get(name)
        if value is not None and not -INT32_MAX <= value <= INT32_MAX:
            raise ValueError(f"{name} {value} is too large for the study database")


def check_origin(origin: str) -> None:
    """The origin recorded for imported votes (``import:<file name>``) must fit its column."""
    limit = column_length(Vote.__table__.c.origin)
    if limit is not None and len(origin) > limit:
        raise ValueError(f"the file name makes an origin of {len(origin)} characters (at most {limit}); "
                         "rename the file")


def check_fingerprint(get: dict[str, str], expected: str) -> None:
    fingerprint = get.get("study_fingerprint", "")
    if not fingerprint:
        raise ValueError("no study_fingerprint: votes can only be merged into the same study definition, "
                         "which the fingerprint proves")
    if fingerprint != expected:
        raise ValueError("study fingerprint differs: the other site's study has other cases, settings, seed "
                         "or model weights")


def check_confidence(confidence: int | None, asks_confidence: bool) -> None:
    if confidence is not None and not asks_confidence:
        raise ValueError(f"confidence {confidence} given, but this study does not ask for a confidence rating")
    if confidence is None and asks_confidence:
        raise ValueError("no confidence, but this study asks for a confidence rating with every vote")


def check_times(voted_at: datetime, displayed_at: datetime | None, created_at: datetime, now: datetime) -> None:
    """Within the study's lifetime (see the module docstring), and shown before voted."""
    earliest, latest = created_at - EARLIEST_BEFORE_CREATION, now + CLOCK_SKEW
    for what, value in (("voted_at", voted_at), ("displayed_at", displayed_at)):
        if value is None:
            continue
        if value > latest:
            raise ValueError(f"{what} {value.isoformat()} is in the future")
        if value < earliest:
            raise ValueError(f"{what} {value.isoformat()} is long before the study was created "
                             f"({created_at.date().isoformat()})")
    if displayed_at is not None and displayed_at > voted_at:
        raise ValueError("displayed_at is later than voted_at")


def first_vote_problems(parsed: list[dict], assignments_with_votes: set[int]) -> list[str]:
    """Rows that would give a query a second first vote (one that amends nothing)."""
    firsts: dict[int, list[int]] = defaultdict(list)
    for p in parsed:
        if not p["amends_uid"]:
            firsts[p["assignment"].id].append(p["line"])
    problems = []
    for assignment_id, lines in firsts.items():
        if assignment_id in assignments_with_votes:
            problems += [f"row {line}: a first vote on a query that already has a vote in the database "
                         "(an answer can only be amended)" for line in lines]
        elif len(lines) > 1:
            problems += [f"row {line}: a second first vote on the query of row {lines[0]} (an answer can only "
                         "be amended)" for line in lines[1:]]
    return problems

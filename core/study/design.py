"""Who reads which case, in which order, with which pane permutation: all drawn from one seed.

The plan is a pure function of (numbers of cases, candidates and readers, design, seed),
so the same definition gives the same plan on every machine and in every test; the plan is
also stored in the database, so votes never depend on recomputing it.

* Allocation (``split`` deals shuffled cases round-robin, as the paper split cases between
  its MDs; ``all`` gives everyone every case; ``anchor`` gives everyone a shared anchor set
  and splits the rest) uses the study seed's first child stream.
* Each reader has its own child stream (recorded as ``reader_seed``): it shuffles the
  reader's cases, draws a fresh uniform pane permutation for every query, and places the
  hidden QC repeats. A repeat shows the same case again later, with a new permutation, so
  agreement with the first answer measures preference rather than position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Query:
    """One item in a reader's list."""

    case: int  # index into the study's cases
    panes: tuple[int, ...]  # candidate indexes, in pane order (pane 0 first)
    shared: bool  # the design gives this case to more than one reader
    repeat_of: int | None = None  # seq of the first showing, for a hidden QC repeat


def reader_seed(seed: int, reader: int) -> int:
    """The recorded seed of reader ``reader`` (0-based), derived from the study seed."""
    return int(np.random.SeedSequence(seed, spawn_key=(reader + 1,)).generate_state(1, np.uint32)[0])


def allocate(n_cases: int, n_readers: int, design: str, anchor_cases: int, seed: int) -> list[list[int]]:
    """The case indexes each reader gets (unordered), by design."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    shuffled = [int(i) for i in rng.permutation(n_cases)]
    if design == "all":
        return [list(range(n_cases)) for _ in range(n_readers)]
    if design == "split":
        return [sorted(shuffled[r::n_readers]) for r in range(n_readers)]
    if design == "anchor":
        anchors, rest = shuffled[:anchor_cases], shuffled[anchor_cases:]
        return [sorted(anchors + rest[r::n_readers]) for r in range(n_readers)]
    raise ValueError(f"unknown design {design!r}")


def order_reader(cases: list[int], n_candidates: int, qc_repeats: int, rng: np.random.Generator,
                 shared: set[int]) -> list[Query]:
    """Shuffle a reader's cases, give each a pane permutation, and slot in QC repeats."""
    order = [int(cases[i]) for i in rng.permutation(len(cases))]
    items: list[list] = [[c, tuple(int(p) for p in rng.permutation(n_candidates)), None] for c in order]
    n_repeats = min(qc_repeats, len(order))
    if n_repeats:
        gap = max(1, len(order) // 3)  # keep a repeat well away from its first showing
        eligible = max(n_repeats, len(order) - gap)  # first showings early enough to leave that gap
        for first in sorted(int(i) for i in rng.choice(eligible, size=n_repeats, replace=False)):
            original = items[[k for k, it in enumerate(items) if it[2] is None][first]]
            at = items.index(original)
            lo = min(at + 1 + gap, len(items))
            pos = int(rng.integers(lo, len(items) + 1))
            items.insert(pos, [original[0], tuple(int(p) for p in rng.permutation(n_candidates)), original])
    seq_of = {id(it): k for k, it in enumerate(items)}
    return [Query(c, panes, c in shared, seq_of[id(ref)] if ref is not None else None)
            for c, panes, ref in items]


def plan(n_cases: int, n_candidates: int, n_readers: int, design: str = "split", anchor_cases: int = 0,
         qc_repeats: int = 0, seed: int = 0) -> list[list[Query]]:
    """Every reader's list of queries, in reading order."""
    allocation = allocate(n_cases, n_readers, design, anchor_cases, seed)
    counts = np.bincount([c for cases in allocation for c in cases], minlength=n_cases)
    shared = {int(c) for c in np.flatnonzero(counts > 1)}
    return [order_reader(cases, n_candidates, qc_repeats, np.random.default_rng(reader_seed(seed, r)), shared)
            for r, cases in enumerate(allocation)]


def pane_label(index: int, style: str = "letters") -> str:
    """Neutral pane names: A, B, C... or 1, 2, 3..."""
    return chr(ord("A") + index) if style == "letters" else str(index + 1)

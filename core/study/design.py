"""Who reads which case, in which order, with which pane permutation: all drawn from one seed.

The plan is a pure function of (numbers of cases, candidates and readers, design, seed),
so the same definition gives the same plan on every machine and in every test; the plan is
also stored in the database, so votes never depend on recomputing it.

* Allocation (``split`` deals shuffled cases round-robin, as the paper split cases between
  its MDs; ``all`` gives everyone every case; ``anchor`` gives everyone a shared anchor set
  and splits the rest) uses the study seed's first child stream. It is **stratified** when
  strata are given (the disease label, and a quality tier when the case list has one): the
  shuffled cases are grouped by stratum before dealing, so every reader's block holds each
  stratum in proportion (counts differ by at most one), and anchors are a systematic sample
  across strata. With a single stratum the draws are exactly the unstratified ones.
* Each reader has its own child stream (recorded as ``reader_seed``): it shuffles the
  reader's cases, draws a fresh uniform pane permutation for every query, and places the
  hidden QC repeats. A repeat shows the same case again later, with a new permutation, so
  agreement with the first answer measures preference rather than position; at least
  ``repeat_gap(n)`` other queries (``MIN_REPEAT_GAP``, or a third of the reader's cases when
  that is more; every other case in a list shorter than that) separate it from the first
  showing, and a list too short for that is an error rather than a repeat placed right after
  its first showing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_REPEAT_GAP = 3  # other queries between a case and its hidden repeat, at least


@dataclass(frozen=True)
class Query:
    """One item in a reader's list."""

    case: int  # index into the study's cases
    panes: tuple[int, ...]  # candidate indexes, in pane order (pane 0 first)
    shared: bool  # the design gives this case to more than one reader
    repeat_of: int | None = None  # seq of the first showing, for a hidden QC repeat
    session: int | None = None  # diagnosis: the modality session (0-based) this query belongs to


def reader_seed(seed: int, reader: int) -> int:
    """The recorded seed of reader ``reader`` (0-based), derived from the study seed."""
    return int(np.random.SeedSequence(seed, spawn_key=(reader + 1,)).generate_state(1, np.uint32)[0])


def allocate(n_cases: int, n_readers: int, design: str, anchor_cases: int, seed: int,
             strata: Sequence[str] | None = None) -> list[list[int]]:
    """The case indexes each reader gets (unordered), by design, stratified when ``strata`` are given."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    shuffled = [int(i) for i in rng.permutation(n_cases)]
    stratified = strata is not None and len(set(strata)) > 1
    if stratified:  # stable: within a stratum the shuffled order is kept
        order = {s: k for k, s in enumerate(sorted(set(strata)))}
        shuffled.sort(key=lambda i: order[strata[i]])
    if design == "all":
        return [list(range(n_cases)) for _ in range(n_readers)]
    if design == "split":
        return [sorted(shuffled[r::n_readers]) for r in range(n_readers)]
    if design == "anchor":
        if stratified:  # a systematic sample across the stratum-ordered list
            picks = {int((k + 0.5) * n_cases / anchor_cases) for k in range(anchor_cases)}
            anchors = [c for at, c in enumerate(shuffled) if at in picks]
            rest = [c for at, c in enumerate(shuffled) if at not in picks]
        else:
            anchors, rest = shuffled[:anchor_cases], shuffled[anchor_cases:]
        return [sorted(anchors + rest[r::n_readers]) for r in range(n_readers)]
    raise ValueError(f"unknown design {design!r}")


def repeat_gap(n_cases: int) -> int:
    """Least number of other queries between a case and its hidden repeat, for a list of ``n_cases``:
    a third of the list, at least ``MIN_REPEAT_GAP`` (or all other cases of a shorter list), never 0."""
    return max(min(MIN_REPEAT_GAP, n_cases - 1), n_cases // 3, 1)


def order_reader(cases: list[int], n_candidates: int, qc_repeats: int, rng: np.random.Generator,
                 shared: set[int]) -> list[Query]:
    """Shuffle a reader's cases, give each a pane permutation, and slot in QC repeats."""
    order = [int(cases[i]) for i in rng.permutation(len(cases))]
    items: list[list] = [[c, tuple(int(p) for p in rng.permutation(n_candidates)), None] for c in order]
    n_repeats = min(qc_repeats, len(order))
    if n_repeats:
        gap = repeat_gap(len(order))  # keep a repeat well away from its first showing
        eligible = len(order) - gap  # first showings early enough to leave that gap
        if eligible < n_repeats:
            raise ValueError(f"a reader with {len(order)} cases cannot have {n_repeats} hidden repeat(s) each at "
                             f"least {gap} cases after its first showing; use fewer repeats or more cases")
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
         qc_repeats: int = 0, seed: int = 0, strata: Sequence[str] | None = None) -> list[list[Query]]:
    """Every reader's list of queries, in reading order."""
    allocation = allocate(n_cases, n_readers, design, anchor_cases, seed, strata)
    counts = np.bincount([c for cases in allocation for c in cases], minlength=n_cases)
    shared = {int(c) for c in np.flatnonzero(counts > 1)}
    return [order_reader(cases, n_candidates, qc_repeats, np.random.default_rng(reader_seed(seed, r)), shared)
            for r, cases in enumerate(allocation)]


def modality_order(reader: int, n_modalities: int) -> list[int]:
    """Counterbalanced session order: reader r reads modality (r + s) mod m in session s (a cyclic
    Latin square, so each modality is read in each session position by equally many readers when
    the number of readers is a multiple of m)."""
    return [(reader + s) % n_modalities for s in range(n_modalities)]


def plan_diagnosis(n_cases: int, n_modalities: int, n_readers: int, seed: int = 0) -> list[list[Query]]:
    """Fully crossed diagnosis plan: every reader reads every case once per modality, one modality per
    session, sessions in counterbalanced order, cases shuffled afresh in every session."""
    out = []
    for r in range(n_readers):
        rng = np.random.default_rng(reader_seed(seed, r))
        queries = []
        for session, modality in enumerate(modality_order(r, n_modalities)):
            queries += [Query(int(c), (modality,), True, None, session) for c in rng.permutation(n_cases)]
        out.append(queries)
    return out


def pane_label(index: int, style: str = "letters") -> str:
    """Neutral pane names: A, B, C... or 1, 2, 3..."""
    return chr(ord("A") + index) if style == "letters" else str(index + 1)


AUTHENTICITY_BLOCK = 4  # a real-or-synthetic reader's list comes in shuffled blocks of 2 real + 2 synthetic


def balanced_order(truths: Sequence[str], cases: list[int], rng: np.random.Generator,
                   block: int = AUTHENTICITY_BLOCK) -> list[int]:
    """A seeded order of ``cases`` in which real and synthetic films stay balanced all along.

    Each class is shuffled; the list is then built from blocks of ``block // 2`` of each class,
    each block shuffled (a permuted-block design), so every prefix holds nearly as many real as
    synthetic films and neither class bunches at the start or the end. The class with more films
    has its surplus spread over random places of the list. Blocks of 4 rather than 2: with pairs,
    a reader who knew the design could infer the second film of every pair from the first.
    """
    groups: dict[str, list[int]] = {}
    for c in cases:
        groups.setdefault(truths[c], []).append(int(c))
    keys = sorted(groups)
    shuffled = {k: [groups[k][int(i)] for i in rng.permutation(len(groups[k]))] for k in keys}
    if len(keys) != 2:
        return [c for k in keys for c in shuffled[k]]
    half = block // 2
    a, b = shuffled[keys[0]], shuffled[keys[1]]
    paired = min(len(a), len(b))
    order: list[int] = []
    for start in range(0, paired, half):
        chunk = a[start:min(start + half, paired)] + b[start:min(start + half, paired)]
        order += [chunk[int(i)] for i in rng.permutation(len(chunk))]
    surplus = a[paired:] + b[paired:]
    for c in surplus:
        order.insert(int(rng.integers(0, len(order) + 1)), c)
    return order


def plan_authenticity(truths: Sequence[str], n_readers: int, design: str = "all", anchor_cases: int = 0,
                      seed: int = 0) -> list[list[Query]]:
    """Real-or-synthetic plan: one film per query (pane 0, the film as it is); the allocation is
    stratified by truth (every reader gets real and synthetic films in proportion) and each
    reader's list is a ``balanced_order`` drawn from the reader's own seed."""
    allocation = allocate(len(truths), n_readers, design, anchor_cases, seed, list(truths))
    counts = np.bincount([c for cases in allocation for c in cases], minlength=len(truths))
    shared = {int(c) for c in np.flatnonzero(counts > 1)}
    return [[Query(c, (0,), c in shared) for c in balanced_order(truths, cases,
                                                                 np.random.default_rng(reader_seed(seed, r)))]
            for r, cases in enumerate(allocation)]

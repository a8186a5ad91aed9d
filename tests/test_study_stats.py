"""Statistics against values computed by hand on a small fixed vote set, and the counting rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.study.reading import ReadingSession
from core.study.report import summary_text, table_markdown
from core.study.stats import CountedVote, compute_stats, study_stats, wilson
from core.study.store import open_store
from tests.study_helpers import make_study, write_cases

Z = 1.959963984540054  # standard normal quantile for 95%


def hand_wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    denom = 1 + Z**2 / n
    center = (p + Z**2 / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denom
    return center - half, center + half


# MD I and MD II both read cases c1..c5 (candidates: 0 = Original, 1 = G1, 2 = G2).
CHOICES = {"MD I": [1, 1, 0, 2, 1], "MD II": [1, 0, 0, 2, 1]}
PANES = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


def fixed_votes() -> list[CountedVote]:
    votes = []
    q = 0
    for reader, choices in CHOICES.items():
        for i, cand in enumerate(choices):
            votes.append(CountedVote(reader, f"c{i + 1}", q, cand, PANES[q], None, 1000 * (q + 1)))
            q += 1
    # QC repeats: MD I repeats c1 (query 0) choosing G1 again; MD II repeats c2 (query 6) choosing G2 this time.
    votes.append(CountedVote("MD I", "c1", 100, 1, 2, repeat_of=0))
    votes.append(CountedVote("MD II", "c2", 101, 2, 0, repeat_of=6))
    return votes


@pytest.fixture
def stats():
    return compute_stats("Fixed", "restoration", ["Original", "G1", "G2"], ["original", "g1:3", "g2:3"],
                         ["MD I", "MD II"], fixed_votes())


def test_selection_ratios_and_wilson_intervals(stats):
    assert [r.reader for r in stats.rows] == ["MD I", "MD II", "Overall"]
    assert [r.n for r in stats.rows] == [5, 5, 10]  # repeats are not counted
    assert [[c.count for c in r.cells] for r in stats.rows] == [[1, 3, 1], [2, 2, 1], [3, 5, 2]]
    for row in stats.rows:
        for cell in row.cells:
            lo, hi = hand_wilson(cell.count, cell.n)
            assert cell.ratio == pytest.approx(cell.count / cell.n)
            assert (cell.ci_low, cell.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert stats.rows[0].cells[1].ci_low == pytest.approx(0.2307, abs=1e-4)  # 3/5: [0.2307, 0.8824]
    assert stats.rows[0].cells[1].ci_high == pytest.approx(0.8824, abs=1e-4)
    assert (stats.restored_share.count, stats.restored_share.n) == (7, 10)
    assert stats.rows[0].median_decision_s == 3.0  # 1, 2, 3, 4, 5 s


def test_chance_and_position_tests(stats):
    # chi-square with 2 df: statistic sum (o - e)^2 / e, p = exp(-x / 2)
    assert stats.chance.statistic == pytest.approx(1.4)  # (1/9 + 25/9 + 16/9) / (10/3)
    assert stats.chance.p_value == pytest.approx(math.exp(-0.7))
    assert stats.position_bias.counts == [4, 3, 3]
    assert stats.position_bias.statistic == pytest.approx(0.2)
    assert stats.position_bias.p_value == pytest.approx(math.exp(-0.1))


def test_fleiss_kappa_by_hand(stats):
    # per-case agreement P_i: c2 disagrees (0), the other four agree (1): mean 0.8;
    # category shares 3/10, 5/10, 2/10: P_e = 0.09 + 0.25 + 0.04 = 0.38; kappa = (0.8 - 0.38) / 0.62
    assert stats.agreement.cases == 5 and stats.agreement.raters_per_case == 2
    assert stats.agreement.kappa == pytest.approx(0.42 / 0.62)


def test_inference_shares_contrasts_and_chance(stats):
    inf = stats.inference
    assert [s.share for s in inf.shares] == pytest.approx([0.3, 0.5, 0.2])
    assert all(s.chance == pytest.approx(1 / 3) for s in inf.shares)
    assert inf.restored.chance == pytest.approx(2 / 3) and inf.restored.share == pytest.approx(0.7)
    assert [s.direction for s in inf.shares] == ["below", "above", "below"]
    for s in inf.shares:
        assert s.ci_low <= s.share <= s.ci_high
    # paired over readers: G1 - Original per reader = 2/5, 0 -> mean 0.2; t-test with 1 df
    g1 = inf.contrasts[0]
    assert g1.difference == pytest.approx(0.2)
    assert g1.p_value == pytest.approx(0.5)  # t = 0.2 / (0.2 / sqrt 2) * ... = 1 with 1 df: p = 0.5
    assert g1.p_holm >= g1.p_value
    assert stats.agreement.ci_low <= stats.agreement.kappa <= stats.agreement.ci_high


def test_vectorised_kappa_matches_statsmodels():
    from statsmodels.stats.inter_rater import fleiss_kappa

    from core.study.inference import fleiss_kappa_batch

    rng = np.random.default_rng(0)
    tables = np.stack([rng.multinomial(4, [0.5, 0.3, 0.2], size=12) for _ in range(5)])
    expected = [fleiss_kappa(t, method="fleiss") for t in tables]
    assert fleiss_kappa_batch(tables) == pytest.approx(expected)


def test_qc_consistency(stats):
    assert [(c.reader, c.agreeing, c.pairs) for c in stats.consistency] == [("MD I", 1, 1), ("MD II", 0, 1)]


def test_degenerate_cases():
    none = compute_stats("E", "restoration", ["Original", "G"], ["original", "g:1"], ["MD I"], [])
    assert none.overall.n == 0 and none.chance.p_value is None and none.inference is None and none.agreement is None
    assert wilson(0, 0).ratio is None
    same = compute_stats("S", "restoration", ["Original", "G"], ["original", "g:1"], ["A", "B"],
                         [CountedVote("A", "c", 0, 1, 0), CountedVote("B", "c", 1, 1, 1)])
    assert same.agreement.kappa is None  # everyone chose the same: kappa undefined, not a crash
    md = table_markdown(same)
    assert md.splitlines()[0] == "| Reader | n | Original | G |"
    assert "| *Chance* | | 50.0% | 50.0% |" in md
    assert "| **Overall** | 2 | 0.0% (0; 0.0%–65.8%) | 100.0% (2; 34.2%–100.0%) |" in md
    assert "Agreement (Fleiss' kappa): undefined" in summary_text(same)


def test_database_counting_rules(study_env):
    """End to end: amendments replace, repeats are excluded from ratios, only this study counts."""
    write_cases(study_env.tmp / "cases", 4)
    with open_store(study_env.tmp / "s.db") as store:
        make_study(store, study_env.tmp / "cases", name="R", design="all", qc_repeats=1, seed=1)
        make_study(store, study_env.tmp / "cases", name="Other", readers=1)
        for reader in ("MD I", "MD II"):
            session = ReadingSession(store, "R", reader)
            for i in range(session.total):
                session.vote("A", index=i)
        session = ReadingSession(store, "R", "MD I")
        session.vote("B", index=0)  # amendment
        ReadingSession(store, "Other", "MD I").vote("C")
        stats = study_stats(store, "R")
    assert [r.n for r in stats.rows] == [4, 4, 8]
    assert sum(c.count for c in stats.rows[0].cells) == 4
    assert stats.position_bias.counts == [7, 1, 0]
    assert [c.pairs for c in stats.consistency] == [1, 1]
    assert stats.agreement.cases == 4


def test_mean_confidence_per_reader_and_chosen_candidate():
    """Hand-computed: only counted (latest, non-repeat) votes with a rating enter the means."""
    votes = [
        CountedVote("MD I", "c1", 0, 0, 0, confidence=2),
        CountedVote("MD I", "c2", 1, 1, 1, confidence=5),
        CountedVote("MD I", "c3", 2, 1, 2, confidence=4),
        CountedVote("MD II", "c1", 3, 2, 0, confidence=3),
        CountedVote("MD II", "c2", 4, 1, 1),  # not rated: left out of the means
        CountedVote("MD I", "c1", 5, 1, 1, repeat_of=0, confidence=1),  # QC repeat: left out
    ]
    stats = compute_stats("C", "restoration", ["Original", "G1", "G2"], ["original", "g1:3", "g2:3"],
                          ["MD I", "MD II"], votes)
    rows = {r.reader: r for r in stats.confidence}
    assert list(rows) == ["MD I", "MD II", "Overall"]
    assert (rows["MD I"].n, rows["MD I"].mean) == (3, pytest.approx(11 / 3))
    assert rows["MD I"].by_candidate == [2.0, 4.5, None] and rows["MD I"].counts == [1, 2, 0]
    assert (rows["MD II"].n, rows["MD II"].mean, rows["MD II"].by_candidate) == (1, 3.0, [None, None, 3.0])
    assert rows["Overall"].by_candidate == [2.0, 4.5, 3.0] and rows["Overall"].mean == pytest.approx(3.5)
    assert "Mean confidence, MD I: 3.67 (n=3; Original 2.0, G1 4.5)" in summary_text(stats)
    assert compute_stats("N", "restoration", ["Original", "G"], ["original", "g:1"], ["A"],
                         [CountedVote("A", "c", 0, 1, 0)]).confidence == []  # nothing rated: no rows

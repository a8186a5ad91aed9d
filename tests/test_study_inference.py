"""Preference inference with readers and cases random: the clustered interval, chance levels, contrasts,
per-reader position bias and the weighting choice."""

from __future__ import annotations

import numpy as np
import pytest

from core.study.inference import AnalysisSettings
from core.study.report import statistics_items, summary_text, table_markdown
from core.study.stats import CountedVote, compute_stats

CANDIDATES = ["Original", "G1", "G2", "G3", "G4", "G5", "G6"]  # 7 panes: chance 1/7 = 14.3%
SPECS = ["original", "g1:3", "g2:3", "g3:3", "g4:3", "g5:3", "g6:3"]
FAST = AnalysisSettings(replicates=400, seed=1)


def one_reader_driven(original_counts=(28, 7, 8, 9), cases_per_reader=50, biased_reader=None):
    """4 readers, 200 cases split 50 each; reader MD I picks the original 28 of 50 times, the others 7-9."""
    rng = np.random.default_rng(5)
    votes, q = [], 0
    readers = ["MD I", "MD II", "MD III", "MD IV"]
    for r, (reader, n_orig) in enumerate(zip(readers, original_counts, strict=True)):
        for i in range(cases_per_reader):
            choice = 0 if i < n_orig else 1 + (i % 6)
            pane = 0 if reader == biased_reader else int(rng.integers(0, 7))
            votes.append(CountedVote(reader, f"case{r * cases_per_reader + i}", q, choice, pane))
            q += 1
    return readers, votes


def test_one_reader_driven_result_does_not_generalise():
    readers, votes = one_reader_driven()
    stats = compute_stats("One reader", "restoration", CANDIDATES, SPECS, readers, votes, FAST)
    chance = 1 / 7
    original = stats.inference.shares[0]
    assert original.share == pytest.approx(52 / 200) and original.chance == pytest.approx(chance)
    # the readers-and-cases-random interval includes chance ...
    assert original.ci_low < chance < original.ci_high
    assert original.p_value > 0.05 and original.direction == "above"
    # ... while the reader who drives it has an interval of their own well above chance,
    md1 = stats.rows[0].cells[0]
    assert md1.ci_low > chance
    # and the pooled (votes independent) interval would have claimed significance.
    pooled = stats.overall.cells[0]
    assert pooled.ci_low > chance
    assert (original.ci_high - original.ci_low) > 2 * (pooled.ci_high - pooled.ci_low)
    # chance is beside the headline figures in the report, and in the table
    text = summary_text(stats)
    assert "chance 85.7%" in text and "chance 14.3%" in text
    assert "| *Chance* |" in table_markdown(stats)
    headline = dict(statistics_items(stats))["Chosen over the original"]
    assert "chance 85.7%" in headline and "below chance" in headline


def test_restored_share_is_tested_directionally_against_its_chance():
    readers, votes = one_reader_driven(original_counts=(20, 20, 20, 20))
    stats = compute_stats("Above chance", "restoration", CANDIDATES, SPECS, readers, votes, FAST)
    restored = stats.inference.restored
    assert restored.share == pytest.approx(0.6) and restored.chance == pytest.approx(6 / 7)
    assert restored.direction == "below"
    assert restored.ci_high < 6 / 7 and restored.p_value < 0.001  # every reader picks the original 40%


def test_variant_contrasts_are_holm_adjusted():
    readers, votes = one_reader_driven()
    stats = compute_stats("Contrasts", "restoration", CANDIDATES, SPECS, readers, votes, FAST)
    contrasts = stats.inference.contrasts
    assert [c.name for c in contrasts] == CANDIDATES[1:]
    raw = sorted(c.p_value for c in contrasts)
    holm = sorted(c.p_holm for c in contrasts)
    assert holm[0] == pytest.approx(min(1.0, 6 * raw[0]))
    assert all(h >= p - 1e-12 for h, p in zip(holm, raw, strict=True))
    for c in contrasts:
        assert c.ci_low <= c.difference <= c.ci_high


def test_position_bias_is_flagged_per_reader():
    readers, votes = one_reader_driven(biased_reader="MD III")
    stats = compute_stats("Bias", "restoration", CANDIDATES, SPECS, readers, votes, FAST)
    flags = {b.reader: b.flagged for b in stats.inference.position_bias}
    assert flags == {"MD I": False, "MD II": False, "MD III": True, "MD IV": False}
    assert "FLAGGED" in dict(statistics_items(stats))["Pane-position bias, MD III"]


def test_anchor_weighting_is_stated_and_selectable():
    # two readers; anchor case "a" read by both (both choose G1), each has one own case choosing the original
    votes = [CountedVote("A", "a", 0, 1, 0), CountedVote("B", "a", 1, 1, 1),
             CountedVote("A", "x", 2, 0, 0), CountedVote("B", "y", 3, 0, 1)]
    by_vote = compute_stats("W", "restoration", ["Original", "G1"], ["original", "g:1"], ["A", "B"], votes, FAST)
    by_case = compute_stats("W", "restoration", ["Original", "G1"], ["original", "g:1"], ["A", "B"], votes,
                            AnalysisSettings(replicates=50, weighting="cases"))
    assert by_vote.inference.shares[1].share == pytest.approx(0.5)
    assert by_case.inference.shares[1].share == pytest.approx(1 / 3)
    assert "anchor" in dict(statistics_items(by_vote))["Weighting"]
    with pytest.raises(ValueError):
        AnalysisSettings(weighting="readers")


def test_bootstrap_is_reproducible():
    readers, votes = one_reader_driven()
    a = compute_stats("R", "restoration", CANDIDATES, SPECS, readers, votes, FAST).inference.shares[0]
    b = compute_stats("R", "restoration", CANDIDATES, SPECS, readers, votes, FAST).inference.shares[0]
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)

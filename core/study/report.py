"""The one formatter of a study's statistics: the CLI, the app and the export all use it.

Every headline figure carries its chance level ("chance 14.3%"), and the clustered (readers and
cases random) interval and test come first; the pooled per-reader Wilson table is descriptive.
"""

from __future__ import annotations

from core.study.inference import ShareInference
from core.study.stats import StudyStats, TestResult


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def p_text(p: float | None) -> str:
    return "–" if p is None else f"{p:.3g}"


def column_headers(stats: StudyStats) -> list[str]:
    """Candidate names with the chance level each share is compared with."""
    return [f"{name} (chance {pct(stats.chance_level)})" for name in stats.candidates]


def table_markdown(stats: StudyStats) -> str:
    """The paper's layout: rows per reader and Overall, columns Original then each variant."""
    head = "| Reader | n | " + " | ".join(stats.candidates) + " |"
    sep = "|---|---:|" + "---:|" * len(stats.candidates)
    lines = [head, sep]
    for row in stats.rows:
        cells = [f"{pct(c.ratio)} ({c.count}; {pct(c.ci_low)}–{pct(c.ci_high)})" if c.n else "–"
                 for c in row.cells]
        name = f"**{row.reader}**" if row.reader == "Overall" else row.reader
        lines.append(f"| {name} | {row.n} | " + " | ".join(cells) + " |")
    inf = stats.inference
    if inf is not None:
        cells = [f"{pct(s.share)} [{pct(s.ci_low)}–{pct(s.ci_high)}]" for s in inf.shares]
        lines.append(f"| **Overall, readers and cases random** | {stats.overall.n} | " + " | ".join(cells) + " |")
    lines.append("| *Chance* | | " + " | ".join(pct(stats.chance_level) for _ in stats.candidates) + " |")
    lines.append("")
    lines.append("Cells: selection ratio (count; 95% Wilson interval, votes treated as independent: descriptive). "
                 "The readers-and-cases-random row gives the reader x case bootstrap interval that generalises "
                 "to other readers and cases. Chance = 1 / number of panes. Only each reader's latest vote per "
                 "case counts; hidden QC repeats are excluded.")
    return "\n".join(lines) + "\n"


def share_line(s: ShareInference, confidence: float) -> str:
    """'25.3% [10.4–45.8%], chance 14.3%: above chance, p = 0.36 (t-test of 4 reader shares ...)'."""
    c = round(100 * confidence)
    return (f"{pct(s.share)} ({c}% CI {pct(s.ci_low)}–{pct(s.ci_high)}, readers and cases random); "
            f"chance {pct(s.chance)}: {s.direction} chance, p = {p_text(s.p_value)} ({s.method})")


def _chi(test: TestResult) -> str:
    if test.p_value is None:
        return "not enough answers yet"
    return f"chi-square {test.statistic:.2f}, {test.dof} df, p = {test.p_value:.3g}"


def statistics_items(stats: StudyStats) -> list[tuple[str, str]]:
    """(label, one-line result) for every statistic, headline figures first, each with its chance level."""
    items: list[tuple[str, str]] = []
    inf = stats.inference
    overall = stats.overall
    if inf is not None:
        conf = inf.settings.confidence
        share = stats.restored_share
        items.append(("Chosen over the original", share_line(inf.restored, conf)
                      + f"; pooled {share.count}/{share.n}"))
        for s in inf.shares:
            items.append((f"{s.name} share", share_line(s, conf)))
        for c in inf.contrasts:
            items.append((f"{c.name} vs original", f"share difference {_signed(c.difference)} "
                          f"({round(100 * conf)}% CI {_signed(c.ci_low)} to {_signed(c.ci_high)}); paired over "
                          f"readers p = {p_text(c.p_value)}, Holm-adjusted p = {p_text(c.p_holm)}"))
        items.append(("All candidates against chance (pooled, votes independent)", _chi(stats.chance)))
        items.append(("Pane-position bias, pooled", _chi(stats.position_bias)
                      + f"; votes by pane position {stats.position_bias.counts}"))
        for b in inf.position_bias:
            flag = "FLAGGED: position bias" if b.flagged else "no evidence of position bias"
            items.append((f"Pane-position bias, {b.reader}",
                          f"{flag} (votes by position {b.counts}; p = {p_text(b.p_value)}, Holm over readers "
                          f"p = {p_text(b.p_holm)})" if b.p_value is not None else
                          f"too few answers to test (votes by position {b.counts})"))
        weighting = ("every vote counts once, so a case read by several readers (anchor cases) weighs that many "
                     "times" if inf.settings.weighting == "votes" else
                     "every case counts once (a vote weighs 1 / readers of its case)")
        items.append(("Weighting", weighting))
    elif overall.n == 0:
        items.append(("Votes", "no counted votes yet"))
    if stats.agreement:
        a = stats.agreement
        kappa = "undefined (no variation)" if a.kappa is None else f"{a.kappa:.3f}"
        ci = f" (95% CI {a.ci_low:.3f} to {a.ci_high:.3f}, case bootstrap)" if a.ci_low is not None else ""
        items.append(("Agreement (Fleiss' kappa)", f"{kappa}{ci} on {a.cases} shared cases, "
                                                    f"{a.raters_per_case} readers each; chance agreement = 0"))
    for c in stats.consistency:
        if c.pairs:
            items.append((f"QC consistency, {c.reader}", f"{c.agreeing}/{c.pairs} repeats answered alike "
                                                          f"(chance {pct(stats.chance_level)})"))
    for line in confidence_lines(stats):
        reader, _, rest = line.partition(": ")
        items.append((f"Mean confidence, {reader}", rest))
    for r in stats.rows:
        if r.median_decision_s is not None:
            items.append((f"Median time to decide, {r.reader}", f"{r.median_decision_s:.1f} s"))
    items += [("Note", n) for n in stats.notes + (inf.notes if inf else [])]
    return items


def _signed(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.1f} points"


def summary_text(stats: StudyStats) -> str:
    """A short plain-text report for the command line."""
    out = [f"Study {stats.study!r} ({stats.kind}): {stats.overall.n} counted queries", "", table_markdown(stats)]
    out += [f"{label}: {text}" for label, text in statistics_items(stats)]
    return "\n".join(out)


def confidence_lines(stats: StudyStats) -> list[str]:
    """One line per reader and Overall: "MD I: 3.8 (n=12; Original 3.0, CLAHE 4.1, ...)"."""
    out = []
    for row in stats.confidence:
        if row.mean is None:
            continue
        parts = [f"{name} {mean:.1f}" for name, mean in zip(stats.candidates, row.by_candidate, strict=True)
                 if mean is not None]
        out.append(f"{row.reader}: {row.mean:.2f} (n={row.n}; {', '.join(parts)})")
    return out

"""The MRMC result as the documented JSON object and as a short text report.

JSON shape (``r2c-review mrmc analyze --json``; treatments and readers keyed by their labels,
sorted)::

    {"auc": {treatment: {reader: AUC}}, "mean_auc": {treatment: AUC},
     "difference": {"treatments": [first, second], "estimate": first - second, "ci": [lo, hi],
                    "F": ..., "df1": ..., "df2": ..., "p": ...},      # "X2", "df1" with fixed readers
     "covariance": {"var_error": ..., "cov1": ..., "cov2": ..., "cov3": ...}}

With more than two treatments, ``difference`` is the first pair and ``comparisons`` holds every
pair with the global test in ``equality``.
"""

from __future__ import annotations

from core.mrmc.obuchowski_rockette import Difference, MrmcResult, reader_auc_intervals


def _difference_json(result: MrmcResult, diff: Difference) -> dict:
    out: dict = {"treatments": list(diff.treatments), "estimate": diff.estimate, "ci": list(map(float, diff.ci))}
    if result.readers_effect == "fixed":
        out |= {"X2": diff.statistic ** 2, "df1": 1.0, "p": diff.p}
    else:
        out |= {"F": diff.statistic ** 2, "df1": 1.0, "df2": diff.df, "p": diff.p}
    return out


def result_json(result: MrmcResult) -> dict:
    """The documented object (pairwise difference: F = t^2 on 1 and Hillis df)."""
    out = {
        "auc": {t: {r: float(result.auc[i, j]) for j, r in enumerate(result.readers)}
                for i, t in enumerate(result.treatments)},
        "mean_auc": {t: float(m) for t, m in zip(result.treatments, result.mean_auc, strict=True)},
        "difference": _difference_json(result, result.differences[0]),
        "covariance": {"var_error": result.components.var_error, "cov1": result.components.cov1,
                       "cov2": result.components.cov2, "cov3": result.components.cov3},
    }
    if len(result.treatments) > 2:
        test = result.test
        out["equality"] = {test.statistic_name: test.statistic, "df1": test.df1, "p": test.p} | (
            {"df2": test.df2} if test.df2 is not None else {})
        out["comparisons"] = [_difference_json(result, d) for d in result.differences]
    return out


def _num(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def result_text(result: MrmcResult) -> str:
    """Plain-text report: reader AUCs, treatment means, the test, the differences, the covariances."""
    conf = round(100 * result.conf_level)
    lines = [f"MRMC ROC analysis (Obuchowski-Rockette): {len(result.readers)} readers, "
             f"{len(result.treatments)} treatments, {result.n_positive} diseased + {result.n_negative} "
             f"non-diseased cases; readers {result.readers_effect}, cases {result.cases_effect}"
             + (f", {result.covariance_method} covariance" if result.cases_effect == "random" else ""), ""]
    ci = reader_auc_intervals(result)
    lines.append("Empirical AUC by reader" + (f" (normal {conf}% CI)" if result.cases_effect == "random" else ""))
    for i, t in enumerate(result.treatments):
        cells = []
        for j, r in enumerate(result.readers):
            cell = f"{r} {result.auc[i, j]:.4f}"
            if result.cases_effect == "random":
                cell += f" [{ci[i, j, 0]:.3f}, {ci[i, j, 1]:.3f}]"
            cells.append(cell)
        lines.append(f"  {t}: " + "; ".join(cells))
    lines += ["", f"Mean AUC ({conf}% CI)"]
    for m in result.means:
        df = f", df {m.df:.2f}" if m.df is not None else ""
        lines.append(f"  {m.treatment}: {m.estimate:.4f} [{m.ci[0]:.4f}, {m.ci[1]:.4f}] (SE {m.se:.4f}{df})")
    test = result.test
    df = f"{test.df1:g}, {test.df2:.2f}" if test.df2 is not None else f"{test.df1:g}"
    lines += ["", f"Equal means: {test.statistic_name}({df}) = {test.statistic:.4f}, p = {test.p:.4g}", "",
              f"Differences ({conf}% CI)"]
    for d in result.differences:
        kind = f"t({d.df:.2f})" if d.df is not None else "z"
        lines.append(f"  {d.treatments[0]} - {d.treatments[1]}: {d.estimate:+.4f} [{d.ci[0]:+.4f}, "
                     f"{d.ci[1]:+.4f}], SE {d.se:.4f}, {kind} = {d.statistic:.3f}, p = {d.p:.4g}")
    if result.reader_differences:
        lines += ["", "By reader (fixed readers)"]
        for rd in result.reader_differences:
            d = rd.difference
            lines.append(f"  {rd.reader}: {d.treatments[0]} - {d.treatments[1]} {d.estimate:+.4f} "
                         f"[{d.ci[0]:+.4f}, {d.ci[1]:+.4f}], p = {d.p:.4g}")
    c = result.components
    lines += ["", f"Var(error) {c.var_error:.6g}, Cov1 {c.cov1:.6g}, Cov2 {c.cov2:.6g}, Cov3 {c.cov3:.6g}"]
    if result.var_r is not None:
        lines.append(f"Reader variance {_num(result.var_r, 6)}, treatment x reader {_num(result.var_tr, 6)}")
    return "\n".join(lines)

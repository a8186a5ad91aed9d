"""MRMC ROC analysis: Van Dyke published results, independent recomputations, the CLI and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from core.cli.main import main
from core.mrmc import analyze, load_ratings_csv, ratings_from_records
from core.mrmc.auc import empirical_auc
from core.mrmc.covariance import delong_covariance, jackknife_covariance, unbiased_covariance
from core.mrmc.dbm import dbm_components
from core.mrmc.obuchowski_rockette import MrmcResult, reader_auc_intervals
from core.mrmc.ratings import RatingsError
from tests.conftest import require_shared

COV_NAMES = {"DeLong": "delong", "unbiased": "unbiased", "jackknife": "jackknife"}


def _vandyke() -> tuple[Path, dict]:
    folder = require_shared("reference", "mrmc")
    return folder / "vandyke.csv", json.loads((folder / "vandyke_published.json").read_text())


def _quantities(table, cov: str) -> dict[str, float]:
    """Every quantity the published outputs name, computed here (t1/t2 = treatments "1"/"2", r1.. = readers)."""
    out: dict[str, float] = {}
    for prefix, readers, cases in (("rrrc", "random", "random"), ("frrc", "fixed", "random"),
                                   ("rrfc", "random", "fixed")):
        res: MrmcResult = analyze(table, cov, readers, cases)
        diff, test = res.differences[0], res.test
        out |= {f"{prefix}.ms_T": res.anova.ms_t, f"{prefix}.ms_TR": res.anova.ms_tr,
                f"{prefix}.cov1": res.components.cov1, f"{prefix}.cov2": res.components.cov2,
                f"{prefix}.cov3": res.components.cov3, f"{prefix}.denominator": test.denominator,
                f"{prefix}.df1": test.df1, f"{prefix}.p": test.p, f"{prefix}.diff": diff.estimate,
                f"{prefix}.se": diff.se, f"{prefix}.ci_lower": diff.ci[0], f"{prefix}.ci_upper": diff.ci[1],
                f"{prefix}.p_diff": diff.p}
        if readers == "random":
            out |= {f"{prefix}.F": test.statistic, f"{prefix}.df2": test.df2, f"{prefix}.df": diff.df,
                    f"{prefix}.t": diff.statistic}
        else:
            out |= {f"{prefix}.X2": test.statistic, f"{prefix}.df": test.df1, f"{prefix}.z": diff.statistic}
            for rd in res.reader_differences:
                d, key = rd.difference, f"{prefix}.reader.r{rd.reader}"
                j = res.readers.index(rd.reader)
                block = res.auc_cov[np.ix_([j, len(res.readers) + j], [j, len(res.readers) + j])]
                out |= {f"{key}.diff": d.estimate, f"{key}.se": d.se, f"{key}.ci_lower": d.ci[0],
                        f"{key}.ci_upper": d.ci[1], f"{key}.z": d.statistic, f"{key}.p": d.p,
                        f"{key}.var_error": float(np.diag(block).mean()), f"{key}.cov1": float(block[0, 1])}
            ci = reader_auc_intervals(res)
            for i, t in enumerate(res.treatments):
                for j, r in enumerate(res.readers):
                    key = f"{prefix}.single_reader.t{t}.r{r}"
                    g = i * len(res.readers) + j
                    out |= {f"{key}.se": float(np.sqrt(res.auc_cov[g, g])),
                            f"{key}.ci_lower": float(ci[i, j, 0]), f"{key}.ci_upper": float(ci[i, j, 1])}
        for i, m in enumerate(res.means):
            key = f"{prefix}.single.t{m.treatment}"
            out |= {f"{key}.estimate": m.estimate, f"{key}.se": m.se, f"{key}.ci_lower": m.ci[0],
                    f"{key}.ci_upper": m.ci[1], f"{key}.ms_R": res.anova.ms_r_by_treatment[i]}
            if m.df is not None:
                out[f"{key}.df"] = m.df
            r = len(res.readers)
            block = res.auc_cov[i * r:(i + 1) * r, i * r:(i + 1) * r]
            out[f"{key}.cov2"] = float(block[~np.eye(r, dtype=bool)].mean())
            out[f"{key}.var_error"] = float(np.diag(block).mean())
        if prefix == "rrrc":
            c = res.components
            out |= {"var_R": res.var_r, "var_TR": res.var_tr, "var_error": c.var_error, "cov1": c.cov1,
                    "cov2": c.cov2, "cov3": c.cov3, **c.correlations(), "diff": diff.estimate}
            for i, t in enumerate(res.treatments):
                out[f"mean.t{t}"] = float(res.mean_auc[i])
                out[f"msr.t{t}"] = res.anova.ms_r_by_treatment[i]
                for j, rd in enumerate(res.readers):
                    out[f"auc.t{t}.r{rd}"] = float(res.auc[i, j])
            t_n, r_n = res.auc.shape
            out |= {"anova.ms_T": res.anova.ms_t, "anova.df_T": t_n - 1, "anova.ss_T": res.anova.ms_t * (t_n - 1),
                    "anova.ms_R": res.anova.ms_r, "anova.df_R": r_n - 1, "anova.ss_R": res.anova.ms_r * (r_n - 1),
                    "anova.ms_TR": res.anova.ms_tr, "anova.df_TR": (t_n - 1) * (r_n - 1),
                    "anova.ss_TR": res.anova.ms_tr * (t_n - 1) * (r_n - 1)}
    if cov == "jackknife":
        d = dbm_components(table)
        out |= {"dbm.var_R": d.var_r, "dbm.var_C": d.var_c, "dbm.var_TR": d.var_tr, "dbm.var_TC": d.var_tc,
                "dbm.var_RC": d.var_rc, "dbm.var_TRC_plus_error": d.var_trc_error}
    return out


def _analysis_ids() -> list[str]:
    return ["vandyke_empirical_DeLong_RRRC", "vandyke_empirical_unbiased_RRRC", "vandyke_empirical_jackknife_FRRC",
            "vandyke_empirical_RRFC", "vandyke_empirical_jackknife_ORDBM"]


@pytest.mark.parametrize("analysis_id", _analysis_ids())
def test_vandyke_reproduces_published_results(analysis_id):
    csv_path, published = _vandyke()
    analysis = next(a for a in published["analyses"] if a["id"] == analysis_id)
    cov = analysis["settings"]["cov"]
    cov = COV_NAMES.get(cov, "jackknife")  # fixed cases: no covariance is used at all
    ours = _quantities(load_ratings_csv(csv_path), cov)
    missing = [v["quantity"] for v in analysis["values"] if v["quantity"] not in ours]
    assert not missing, f"quantities not computed: {missing}"
    wrong = [(v["quantity"], v["printed"], ours[v["quantity"]]) for v in analysis["values"]
             if abs(ours[v["quantity"]] - v["value"]) > v["abs_tol"] * (1 + 1e-9)]
    assert not wrong, f"differ beyond the printed precision: {wrong}"


def test_every_published_analysis_is_checked():
    _, published = _vandyke()
    assert {a["id"] for a in published["analyses"]} == set(_analysis_ids())


# ------------------------------------------------------------------ independent recomputations


def _random_table(seed: int = 3, t: int = 2, r: int = 3, m: int = 7, n: int = 9):
    rng = np.random.default_rng(seed)
    truth = np.r_[np.ones(m, int), np.zeros(n, int)]
    records = []
    for ti in range(t):
        for ri in range(r):
            scores = rng.integers(1, 6, m + n) + truth * rng.integers(0, 3, m + n)
            records += [(f"R{ri}", f"T{ti}", f"c{k:02d}", int(truth[k]), float(scores[k])) for k in range(m + n)]
    return ratings_from_records(records)


def test_auc_is_mann_whitney():
    table = _random_table()
    auc = empirical_auc(table)
    for i in range(2):
        for j in range(3):
            x = table.ratings[i, j]
            u = mannwhitneyu(x[table.truth], x[~table.truth]).statistic
            assert auc[i, j] == pytest.approx(u / (table.n_positive * table.n_negative))


def test_jackknife_matches_brute_force_leave_one_out():
    table = _random_table()
    k = len(table.cases)
    loo = []
    for drop in range(k):
        keep = np.arange(k) != drop
        sub = type(table)(table.treatments, table.readers, [c for i, c in enumerate(table.cases) if keep[i]],
                          table.truth[keep], table.ratings[:, :, keep])
        loo.append(empirical_auc(sub).ravel())
    loo = np.array(loo)
    expected = (k - 1) / k * (loo - loo.mean(0)).T @ (loo - loo.mean(0))
    np.testing.assert_allclose(jackknife_covariance(table), expected, rtol=1e-12, atol=1e-15)


def test_unbiased_covariance_matches_brute_force_u_statistic():
    """The closed form equals its definition: mean product over all pairs minus the brute-force unbiased
    product of means (psi pairs sharing no case)."""
    table = _random_table(m=4, n=5)
    from core.mrmc.auc import psi_matrices

    psi = psi_matrices(table).reshape(6, 4, 5)
    m, n = 4, 5
    mean_a = psi.mean(axis=(1, 2))
    prod_distinct = np.zeros((6, 6))
    count = 0
    for i in range(m):
        for j in range(n):
            for i2 in range(m):
                for j2 in range(n):
                    if i != i2 and j != j2:
                        prod_distinct += np.outer(psi[:, i, j], psi[:, i2, j2])
                        count += 1
    expected = np.outer(mean_a, mean_a) - prod_distinct / count
    np.testing.assert_allclose(unbiased_covariance(table), expected, atol=1e-14)


def test_delong_single_reader_variance_matches_textbook_formula():
    table = _random_table()
    x = table.ratings[0, 0]
    pos, neg = x[table.truth], x[~table.truth]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    expected = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert delong_covariance(table)[0, 0] == pytest.approx(expected)


def test_identical_treatments_give_no_difference():
    table = _random_table()
    same = type(table)(table.treatments, table.readers, table.cases, table.truth,
                       np.stack([table.ratings[0], table.ratings[0]]))
    res = analyze(same, "delong")
    assert res.differences[0].estimate == 0
    assert res.components.cov1 == pytest.approx(res.components.var_error)


# ------------------------------------------------------------------ the command and bad input


def test_cli_json_shape(capsys, tmp_path):
    table = _random_table(t=3)
    path = tmp_path / "ratings.csv"
    lines = ["reader,treatment,case,truth,rating"]
    for i, t in enumerate(table.treatments):
        for j, r in enumerate(table.readers):
            lines += [f"{r},{t},{c},{int(table.truth[k])},{table.ratings[i, j, k]:g}"
                      for k, c in enumerate(table.cases)]
    path.write_text("\n".join(lines) + "\n")
    assert main(["mrmc", "analyze", str(path), "--json", "--cov", "delong"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["auc"]) == ["T0", "T1", "T2"] and list(out["auc"]["T0"]) == ["R0", "R1", "R2"]
    assert set(out["difference"]) == {"treatments", "estimate", "ci", "F", "df1", "df2", "p"}
    assert out["difference"]["treatments"] == ["T0", "T1"]
    assert out["difference"]["estimate"] == pytest.approx(out["mean_auc"]["T0"] - out["mean_auc"]["T1"])
    assert set(out["covariance"]) == {"var_error", "cov1", "cov2", "cov3"}
    assert len(out["comparisons"]) == 3
    assert main(["mrmc", "analyze", str(path), "--json", "--readers", "fixed", "--plot",
                 str(tmp_path / "roc.png")]) == 0
    fixed = json.loads(capsys.readouterr().out)["difference"]
    assert "X2" in fixed and "df2" not in fixed and "F" not in fixed
    assert (tmp_path / "roc.png").stat().st_size > 1000


@pytest.mark.parametrize("body, reason", [
    ("reader,treatment,case,truth\n1,1,1,0\n", "missing column(s) rating"),
    ("reader,treatment,case,truth,rating\n1,1,1,2,3\n", "line 2: truth must be 0 or 1"),
    ("reader,treatment,case,truth,rating\n1,1,1,1,high\n", "line 2: rating 'high' is not a number"),
    ("reader,treatment,case,truth,rating\n1,1,1,1,3\n1,2,1,1,3\n1,1,2,0,1\n", "not fully crossed"),
    ("reader,treatment,case,truth,rating\n1,1,1,1,3\n1,1,2,0,1\n", "at least two treatments"),
    ("reader,treatment,case,truth,rating\n1,1,1,1,3\n1,2,1,0,1\n", "case '1' has truth 1 and 0"),
])
def test_bad_ratings_file_names_file_and_reason(tmp_path, capsys, body, reason):
    path = tmp_path / "r.csv"
    path.write_text(body)
    with pytest.raises(RatingsError, match=r"r\.csv"):
        load_ratings_csv(path)
    assert main(["mrmc", "analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and reason in err and "Traceback" not in err


# ------------------------------------------------------------------ planning


def test_power_at_the_pilot_size_reproduces_the_pilot_test():
    """At the pilot's own readers and cases and its observed difference, the noncentrality is the observed F
    and the denominator df is Hillis' df (the identity behind Hillis, Obuchowski & Berbaum 2011)."""
    from core.mrmc.power import PilotComponents, power, smallest_cases

    csv_path, _ = _vandyke()
    res = analyze(load_ratings_csv(csv_path), "jackknife")
    pilot = PilotComponents.from_result(res)
    point = power(pilot, abs(res.differences[0].estimate), 5, 114)
    assert point.ncp == pytest.approx(res.test.statistic, rel=1e-9)
    assert point.ddf == pytest.approx(res.test.df2, rel=1e-9)
    more = [power(pilot, 0.05, r, c).power for r, c in ((5, 100), (5, 200), (8, 200))]
    assert more == sorted(more)
    plan = smallest_cases(pilot, 0.05, 6)
    assert plan.power >= 0.8 > power(pilot, 0.05, 6, plan.cases - 1).power


def test_plan_command(capsys):
    csv_path, _ = _vandyke()
    assert main(["mrmc", "plan", str(csv_path), "--delta", "0.05", "--readers", "5,8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["readers"] for row in out["plan"]] == [5, 8]
    assert out["plan"][0]["cases"] > out["plan"][1]["cases"]

"""Export (tidy votes, paper table, JSON, chart) and validated, atomic import of another site's votes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import StudyDefinitionError
from core.study.export import VOTE_COLUMNS, export_study, import_votes
from core.study.reading import ReadingSession
from core.study.stats import study_stats
from core.study.store import Vote, open_store
from tests.study_helpers import make_study, write_cases

pytestmark = pytest.mark.usefixtures("study_env")


@pytest.fixture
def sites(study_env):
    """Two sites that created the same study from the same files and seed; site A has votes."""
    write_cases(study_env.tmp / "cases", 6)
    a = open_store(study_env.tmp / "a.db")
    b = open_store(study_env.tmp / "b.db")
    for store in (a, b):
        make_study(store, study_env.tmp / "cases", name="Multi", design="anchor", anchor_cases=2, qc_repeats=1,
                   seed=5)
    session = ReadingSession(a, "Multi", "MD I")
    for i in range(session.total):
        session.go_to(i)
        session.mark_displayed()
        session.vote("ABC"[i % 3])  # no confidence: this study does not ask for it (import refuses one)
    session.vote("C", index=0)  # an amendment
    ReadingSession(a, "Multi", "MD II").vote("B")
    yield a, b
    a.close()
    b.close()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _vote_count(store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count(Vote.id)))


def test_export_writes_every_artifact(sites, study_env):
    a, _ = sites
    result = export_study(a, "Multi", study_env.tmp / "out")
    assert [p.name for p in result.files] == ["votes.csv", "table.csv", "table_long.csv", "table.md",
                                              "summary.json", "selection.png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in result.files)
    rows = _rows(result.folder / "votes.csv")
    assert list(rows[0]) == VOTE_COLUMNS and len(rows) == result.votes == 7
    amended = [r for r in rows if r["amendment"] == "yes"]
    assert len(amended) == 1 and amended[0]["amends_vote_uid"] in {r["vote_uid"] for r in rows}
    assert sum(r["latest"] == "yes" for r in rows) == 6
    for r in rows:
        panes = r["pane_variants"].split("|")
        assert sorted(panes) == ["clahe:2", "histeq", "original"]
        assert panes[int(r["pane_position"]) - 1] == r["chosen_variant"]
        assert r["disease_label"] in ("COVID-19", "control")
        # timed when the panes were marked displayed: MD I's first votes, not the amendment or MD II
        assert (r["decision_ms"] != "") == (r["reader"] == "MD I" and r["amendment"] == "no")
    table = _rows(result.folder / "table.csv")
    assert [t["reader"] for t in table] == ["MD I", "MD II", "Overall", "Overall (readers and cases random)",
                                            "Chance"]
    assert [float(table[-1][c]) for c in ("Original", "CLAHE")] == [pytest.approx(1 / 3)] * 2
    assert all(r["case_sha256"] and "/" not in r["case"] for r in rows)  # content hash, never a local path
    assert list(table[0]) == ["reader", "n", "Original", "CLAHE", "Histogram equalization"]
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["statistics"]["rows"][2]["n"] == 5  # 4 of MD I (repeat excluded) + 1 of MD II
    assert len(summary["fingerprint"]) == 64 and summary["votes"] == 7
    assert summary["statistics"]["chance_level"] == pytest.approx(1 / 3)
    assert summary["statistics"]["inference"]["restored"]["chance"] == pytest.approx(2 / 3)
    assert any("chance" in item["result"] for item in summary["results"])
    assert (result.folder / "selection.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_round_trip_merges_all_votes(sites, study_env):
    a, b = sites
    export_study(a, "Multi", study_env.tmp / "out")
    assert import_votes(b, study_env.tmp / "out" / "votes.csv") == 7
    sa, sb = study_stats(a, "Multi"), study_stats(b, "Multi")
    assert [[c.count for c in r.cells] for r in sa.rows] == [[c.count for c in r.cells] for r in sb.rows]
    again = _rows(export_study(b, "Multi", study_env.tmp / "out_b").folder / "votes.csv")
    assert sorted(r["vote_uid"] for r in again) == sorted(r["vote_uid"] for r in _rows(
        study_env.tmp / "out" / "votes.csv"))
    assert {r["origin"] for r in again} == {"import:votes.csv"}
    assert sum(r["amendment"] == "yes" for r in again) == 1
    # Importing the same file twice is refused, all or nothing.
    with pytest.raises(StudyDefinitionError, match="already in the database"):
        import_votes(b, study_env.tmp / "out" / "votes.csv")
    assert _vote_count(b) == 7


def _exported_rows(store) -> list[dict]:
    """The rows export writes to votes.csv (without drawing the chart each time)."""
    from core.study.export import vote_rows
    from core.study.manage import load_study

    return vote_rows(store, load_study(store, "Multi"))


def _mutate(rows: list[dict], index: int, **changes) -> list[dict]:
    rows = [dict(r) for r in rows]
    rows[index].update(changes)
    return rows


@pytest.mark.parametrize("change, reason", [
    ({"study": "Elsewhere"}, "vote of study 'Elsewhere', not 'Multi'"),
    ({"study_fingerprint": "0" * 64}, "fingerprint differs"),
    ({"reader": "Dr Who"}, "unknown reader 'Dr Who'"),
    ({"sequence": "99"}, "has no query number '99'"),
    ({"case": "control_0099", "case_sha256": ""}, "not 'control_0099'"),  # no hash: the case id decides
    ({"case_sha256": "0" * 64}, "another content hash"),
    ({"chosen_variant": "r2c-q5:3"}, "unknown candidate 'r2c-q5:3'"),
    ({"pane_variants": "histeq|clahe:2|original"}, "differs from the order this reader was shown"),
    ({"pane_position": "4"}, "pane_position 4 is out of range"),
    ({"voted_at": "yesterday"}, "not an ISO timestamp"),
    ({"voted_at": "2026-01-01T10:00:00"}, "no time zone"),
    ({"confidence": "9"}, "confidence 9 is out of range"),
    ({"qc_repeat": "maybe"}, "qc_repeat flag"),
    ({"amends_vote_uid": "feedface"}, "neither in the file nor the database"),
])
def test_bad_rows_are_named_and_nothing_is_merged(sites, study_env, change, reason):
    a, b = sites
    rows = _exported_rows(a)
    first = next(i for i, r in enumerate(rows) if r["amendment"] == "no" and r["qc_repeat"] == "no")
    if "pane_variants" in change:  # a real permutation that is not the stored one
        current = rows[first]["pane_variants"].split("|")
        change = {"pane_variants": "|".join(current[1:] + current[:1])}
    bad = _write(study_env.tmp / "bad.csv", _mutate(rows, first, **change))
    with pytest.raises(StudyDefinitionError) as err:
        import_votes(b, bad, study="Multi")
    assert f"row {first + 2}: " in err.value.reason and reason in err.value.reason
    assert err.value.source == str(bad)
    assert _vote_count(b) == 0


def test_duplicate_rows_and_file_level_errors(sites, study_env):
    a, b = sites
    rows = _exported_rows(a)
    dup = _write(study_env.tmp / "dup.csv", rows + rows[:1])
    with pytest.raises(StudyDefinitionError, match=r"row 9: duplicate vote \w+ \(also row 2\)"):
        import_votes(b, dup)
    missing_col = _write(study_env.tmp / "cols.csv", [{k: v for k, v in r.items() if k != "reader"} for r in rows])
    with pytest.raises(StudyDefinitionError, match="missing column.*reader"):
        import_votes(b, missing_col)
    with pytest.raises(StudyDefinitionError, match="votes file not found"):
        import_votes(b, study_env.tmp / "nope.csv")
    (study_env.tmp / "empty.csv").write_text(",".join(VOTE_COLUMNS) + "\n")
    with pytest.raises(StudyDefinitionError, match="holds no votes"):
        import_votes(b, study_env.tmp / "empty.csv")
    assert _vote_count(b) == 0


def test_study_with_other_cases_is_refused(sites, study_env):
    a, _ = sites
    write_cases(study_env.tmp / "other", 6, seed=9)
    with open_store(study_env.tmp / "c.db") as c:
        make_study(c, study_env.tmp / "other", name="Multi", design="anchor", anchor_cases=2, qc_repeats=1, seed=5)
        votes = export_study(a, "Multi", study_env.tmp / "out").folder / "votes.csv"
        with pytest.raises(StudyDefinitionError, match="fingerprint differs"):
            import_votes(c, votes)


def test_confidence_goes_into_the_votes_csv_and_the_json_summary(study_env):
    write_cases(study_env.tmp / "cases", 4)
    with open_store(study_env.tmp / "c.db") as store:
        info = make_study(store, study_env.tmp / "cases", name="Sure", readers=1, design="all",
                          ask_confidence=True)
        session = ReadingSession(store, "Sure", "MD I")
        for i, (pane, confidence) in enumerate([("A", 5), ("B", 2), ("A", 3), ("C", 4)]):
            session.vote(pane, confidence=confidence, index=i)
        session.vote("A", confidence=1, index=3)  # amended: the latest rating counts
        result = export_study(store, "Sure", study_env.tmp / "out")
        latest = {int(r["sequence"]) - 1: r for r in _rows(result.folder / "votes.csv") if r["latest"] == "yes"}
    assert [latest[i]["confidence"] for i in range(4)] == ["5", "2", "3", "1"]
    by_candidate: dict[str, list[int]] = {}
    for r in latest.values():
        by_candidate.setdefault(r["chosen_name"], []).append(int(r["confidence"]))
    summary = json.loads((result.folder / "summary.json").read_text())
    assert summary["ask_confidence"] is True
    means = summary["mean_confidence"]
    assert list(means) == ["MD I", "Overall"]
    assert means["MD I"]["all"] == pytest.approx(11 / 4) and means["MD I"]["n"] == 4
    for candidate in info.candidates:
        values = by_candidate.get(candidate.display_name)
        expected = sum(values) / len(values) if values else None
        assert means["MD I"][candidate.display_name] == (pytest.approx(expected) if values else None)
    assert summary["statistics"]["confidence"][0]["reader"] == "MD I"
    assert "Mean confidence, MD I: 2.75" in summary["report"]


def test_two_sites_listing_the_same_images_from_different_folders_merge(study_env):
    """Same images, different folders and listing paths (absolute at one site, relative at the other):
    the same fingerprint, no local path in votes.csv, and import-votes merges every vote."""
    import shutil

    from core.study.manage import load_study

    write_cases(study_env.tmp / "site_a" / "deep" / "images", 4)
    shutil.copytree(study_env.tmp / "site_a" / "deep" / "images", study_env.tmp / "site_b" / "cxr")
    files = sorted((study_env.tmp / "site_a" / "deep" / "images").glob("*.png"))
    (study_env.tmp / "site_a" / "cases.csv").write_text(
        "file,label\n" + "".join(f"{p},{'COVID-19' if 'covid' in p.name else 'control'}\n" for p in files))
    (study_env.tmp / "site_b" / "list.csv").write_text(
        "image,label\n" + "".join(f"cxr/{p.name},{'COVID-19' if 'covid' in p.name else 'control'}\n" for p in files))
    a, b = open_store(study_env.tmp / "a.db"), open_store(study_env.tmp / "b.db")
    try:
        make_study(a, study_env.tmp / "site_a" / "cases.csv", name="Two sites", seed=3)
        make_study(b, study_env.tmp / "site_b" / "list.csv", name="Two sites", seed=3)
        assert load_study(a, "Two sites").fingerprint == load_study(b, "Two sites").fingerprint
        session = ReadingSession(a, "Two sites", "MD I")
        for i in range(session.total):
            session.go_to(i)
            session.vote("AB"[i % 2])
        rows = _rows(export_study(a, "Two sites", study_env.tmp / "out").folder / "votes.csv")
        assert all(str(study_env.tmp) not in value for r in rows for value in r.values())
        assert import_votes(b, study_env.tmp / "out" / "votes.csv") == len(rows) > 0
    finally:
        a.close()
        b.close()


def test_fingerprint_covers_every_definition_field_but_the_name():
    import dataclasses

    from core.study.definition import CaseSpec, StudySpec, parse_candidates
    from core.study.manage import fingerprint

    cases = [CaseSpec("c1", Path("/x/c1.png"), "control", "aa"), CaseSpec("c2", Path("/x/c2.png"), "COVID-19", "bb")]
    spec = StudySpec(name="S", cases=cases, candidates=parse_candidates("clahe"), readers=["A", "B"])
    base = fingerprint(spec, {}, None)
    moved = [CaseSpec(f"elsewhere/{c.key}", Path("/y") / c.path.name, c.label, c.sha256) for c in cases]
    assert fingerprint(dataclasses.replace(spec, name="Other", cases=moved), {}, None) == base
    for change in ({"seed": 1}, {"ask_confidence": True}, {"show_label": False}, {"presentation_size": 600},
                   {"cases": [cases[0], CaseSpec("c2", cases[1].path, "COVID-19", "cc")]}):
        assert fingerprint(dataclasses.replace(spec, **change), {}, None) != base, change

"""The "real or synthetic?" study: balanced design, blinding, judgements, statistics, export and import."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats as st

from core.cli.main import main
from core.errors import StudyDefinitionError, StudyStateError
from core.exports.synthetic import synthetic_description, write_synthetic_png
from core.phantom import make_phantom, to_uint8
from core.study.authenticity import Judgement, analyse, authenticity_results, label_authenticity
from core.study.definition import ORIGINAL, StudySpec, parse_candidates, read_cases
from core.study.design import plan_authenticity
from core.study.export import export_study, import_votes
from core.study.inference import AnalysisSettings
from core.study.manage import create_study
from core.study.presentation import AUTHENTICITY_GRID
from core.study.reading import ReadingSession
from core.study.store import open_store

READERS = ["MD I", "MD II", "MD III"]


def test_grid_is_the_synthesizers() -> None:
    from core.models.pix2pix import IMAGE_SIZE

    assert AUTHENTICITY_GRID == IMAGE_SIZE


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_each_readers_order_is_seeded_and_balanced(seed: int) -> None:
    truths = ["real"] * 12 + ["synthetic"] * 12
    plan = plan_authenticity(truths, 3, "all", seed=seed)
    assert plan == plan_authenticity(truths, 3, "all", seed=seed)  # a pure function of the seed
    orders = [[q.case for q in queries] for queries in plan]
    assert len({tuple(o) for o in orders}) == 3  # every reader their own order
    for order in orders:
        assert sorted(order) == list(range(24))
        syn = np.array([truths[c] == "synthetic" for c in order])
        for start in range(0, 24, 4):  # permuted blocks of 2 real + 2 synthetic
            assert syn[start:start + 4].sum() == 2
        balance = np.cumsum(np.where(syn, 1, -1))
        assert np.abs(balance).max() <= 2  # never more than 2 of one kind ahead
    assert all(q.panes == (0,) for queries in plan for q in queries)


def test_split_design_gives_every_reader_both_kinds_in_proportion() -> None:
    truths = ["real"] * 10 + ["synthetic"] * 6
    plan = plan_authenticity(truths, 2, "split", seed=3)
    cases = [[q.case for q in queries] for queries in plan]
    assert sorted(cases[0] + cases[1]) == list(range(16))
    for mine in cases:
        n_syn = sum(truths[c] == "synthetic" for c in mine)
        assert n_syn == 3 and len(mine) == 8  # stratified: 5 real + 3 synthetic each


def _films(folder: Path, n_real: int = 6, n_syn: int = 6) -> None:
    """Real films of several sizes and bit depths; synthetic films as `synthesize` writes them (224 px, marked)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_real):
        size = [(300, 260), (512, 420), (180, 200)][i % 3]
        img = make_phantom(i, size, quality=0.8)
        if i % 2:
            cv2.imwrite(str(folder / f"film_{i:02d}.png"), np.round(img * 65535).astype(np.uint16))
        else:
            cv2.imwrite(str(folder / f"film_{i:02d}.png"), to_uint8(img))
    for i in range(n_syn):
        img = cv2.resize(make_phantom(100 + i, (300, 260), quality=0.8, disease=True), (224, 224))
        write_synthetic_png(folder / f"film_{100 + i:02d}_SYNTHETIC-pix2pix.png", img,
                            synthetic_description("pix2pix", None, f"film_{100 + i}.png"))


def _create(store, folder: Path, name: str = "RS", **kw):
    spec = StudySpec(name=name, cases=label_authenticity(read_cases(folder)), candidates=[ORIGINAL],
                     readers=READERS, kind="authenticity", design="all", show_label=False, seed=5,
                     presentation_size=320, **kw)
    return create_study(store, spec)


def test_definition_rules(study_env) -> None:
    _films(study_env.tmp / "films", 2, 2)
    cases = label_authenticity(read_cases(study_env.tmp / "films"))
    assert sorted(c.label for c in cases) == ["real", "real", "synthetic", "synthetic"]
    base = dict(name="X", cases=cases, candidates=[ORIGINAL], readers=READERS, kind="authenticity",
                show_label=False, design="all")
    for change, reason in (({"show_label": True}, "hides which films"),
                           ({"candidates": parse_candidates("clahe")}, "original only"),
                           ({"qc_repeats": 1}, "no hidden repeats"),
                           ({"presentation": "native"}, "matched presentation"),
                           ({"cases": cases[:2]}, "needs real and synthetic")):
        with pytest.raises(StudyDefinitionError, match=reason):
            StudySpec(**(base | change)).validate()
    with pytest.raises(StudyDefinitionError, match="real-or-synthetic study"):  # the truth is no disease label
        StudySpec(name="Y", cases=cases, candidates=parse_candidates("clahe"), readers=READERS,
                  show_label=False).validate()


def test_blinding_nothing_shown_tells_a_synthetic_film(study_env, store) -> None:
    _films(study_env.tmp / "films")
    info = _create(store, study_env.tmp / "films")
    truth = {c.key: c.label for c in info.cases}
    assert sorted(truth.values()).count("synthetic") == 6
    shapes, dtypes, questions = set(), set(), set()
    for reader in READERS:
        session = ReadingSession(store, "RS", reader)
        assert session.is_authenticity
        for i in range(session.total):
            view = session.view(i)
            assert view.disease_label is None
            assert len(view.panes) == 1 and view.panes[0].label == "A"
            image = view.panes[0].image
            shapes.add(image.shape)
            dtypes.add(image.dtype)
            questions.add(session.question)
            assert not any(hasattr(view, a) for a in ("case", "path", "key"))
    assert shapes == {(320, 320)} and dtypes == {np.dtype(np.uint8)}  # same size and bit depth for every film
    assert questions == {"Is this chest film real or synthetic?"}
    cached = list(store.cache_dir.rglob("*.png"))
    assert len(cached) == 12
    for path in cached:  # the rendition cache names and tags nothing
        assert "synthetic" not in path.name.lower()
        with open(path, "rb") as f:
            data = f.read()
        assert b"tEXt" not in data and b"iTXt" not in data and b"SYNTHETIC" not in data


def test_judging_is_durable_resumes_and_amends(study_env, store) -> None:
    _films(study_env.tmp / "films", 2, 2)
    _create(store, study_env.tmp / "films", ask_confidence=True)
    session = ReadingSession(store, "RS", "MD I")
    with pytest.raises(StudyStateError, match="takes a judgement"):
        session.vote("A", confidence=3)
    with pytest.raises(StudyStateError, match="confidence"):
        session.judge(True)
    session.judge(True, 4)
    session.judge(False, 2, index=1)
    session.judge(True, 5, index=1)  # amends
    again = ReadingSession(store, "RS", "MD I")
    assert again.progress == (2, 4)
    assert again.view(1).rating == 1 and again.view(1).confidence == 5
    items = authenticity_results(store, "RS", AnalysisSettings(replicates=50))
    assert items.n_real + items.n_synthetic == 2


def _known_table() -> list[Judgement]:
    """3 readers x (4 real + 4 synthetic). MD I is always right; MD II calls everything real; MD III is right
    on the real films and on 2 of the 4 synthetic ones."""
    out = []
    for reader in READERS:
        for k in range(8):
            synthetic = k >= 4
            if reader == "MD I":
                judged = synthetic
            elif reader == "MD II":
                judged = False
            else:
                judged = synthetic and k >= 6
            out.append(Judgement(reader, f"case{k}", f"sha{k}", synthetic, judged, None, None))
    return out


def test_statistics_on_a_known_table() -> None:
    res = analyse(_known_table(), "T", AnalysisSettings(replicates=400, seed=1))
    rows = {r.reader: r for r in res.readers}
    assert rows["MD I"].cells["accuracy"].ratio == 1.0
    assert rows["MD II"].cells["accuracy"].ratio == 0.5
    assert rows["MD II"].cells["sensitivity"].ratio == 0.0
    assert rows["MD II"].cells["synthetic_judged_real"].ratio == 1.0
    assert rows["MD II"].cells["specificity"].ratio == 1.0
    assert rows["MD III"].cells["accuracy"].ratio == 0.75
    assert rows["MD III"].cells["sensitivity"].count == 2 and rows["MD III"].cells["sensitivity"].n == 4
    acc = res.overall["accuracy"]
    assert acc.share == pytest.approx(18 / 24)
    assert acc.p_value == pytest.approx(st.ttest_1samp([1.0, 0.5, 0.75], 0.5).pvalue)
    assert acc.ci_low <= acc.share <= acc.ci_high and acc.direction == "above"
    sens, fooled = res.overall["sensitivity"], res.overall["synthetic_judged_real"]
    assert sens.share == pytest.approx(6 / 12) and fooled.share == pytest.approx(6 / 12)
    assert fooled.ci_low == pytest.approx(1 - sens.ci_high) and fooled.ci_high == pytest.approx(1 - sens.ci_low)
    assert "readers and cases random" in acc.method
    text = res.text()
    assert "Synthetic films judged real: 50.0%" in text and "Chance = 50%" in text
    assert "| MD II | 8 | 50.0% (4/8)" in res.markdown()


def test_chance_readers_are_not_significant() -> None:
    rng = np.random.default_rng(0)
    items = [Judgement(r, f"c{k}", "", k % 2 == 1, bool(rng.random() < 0.5), None, None)
             for r in ["a", "b", "c", "d", "e"] for k in range(40)]
    res = analyse(items, "T", AnalysisSettings(replicates=300))
    acc = res.overall["accuracy"]
    assert acc.ci_low < 0.5 < acc.ci_high and acc.p_value > 0.05


def test_cli_create_stats_export_and_import(study_env, tmp_path: Path, capsys) -> None:
    _films(study_env.tmp / "films", 4, 4)
    db, db2 = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    args = ["study", "create", "RS", "--kind", "authenticity", "--cases", str(study_env.tmp / "films"),
            "--readers", "MD I,MD II", "--design", "all", "--size", "256", "--ask-confidence", "--seed", "4"]
    assert main([*args, "--database", db]) == 0
    assert "4 real and 4 synthetic films" in capsys.readouterr().out
    with open_store(db) as store:
        for reader in ("MD I", "MD II"):
            session = ReadingSession(store, "RS", reader)
            for i in range(session.total):
                synthetic = session._queries[i].case.label == "synthetic"
                session.judge(synthetic if reader == "MD I" else not synthetic, 3, index=i)
    assert main(["study", "stats", "RS", "--database", db, "--replicates", "50"]) == 0
    assert "Accuracy: 50.0%" in capsys.readouterr().out
    out = tmp_path / "export"
    assert main(["study", "export", "RS", "--database", db, "--out", str(out)]) == 0
    for name in ("votes.csv", "judgements.csv", "authenticity.json", "authenticity.md"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "authenticity.json").read_text())
    assert summary["per_reader"][0]["accuracy"]["share"] in (0.0, 1.0)
    with open(out / "judgements.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16 and {r["truth"] for r in rows} == {"real", "synthetic"}
    # another site with the same films merges the votes (same fingerprint)
    assert main([*args, "--database", db2]) == 0
    with open_store(db2) as store:
        assert import_votes(store, out / "votes.csv") == 16
        merged = authenticity_results(store, "RS", AnalysisSettings(replicates=50))
        assert merged.overall["accuracy"].share == pytest.approx(0.5)
    with open_store(db) as store:
        export_study(store, "RS", tmp_path / "again")

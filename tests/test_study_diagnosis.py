"""The diagnosis study kind (MRMC ROC): hidden labels, crossed sessions with washout, ratings, analysis, export."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from core.cli.main import main
from core.errors import StudyDefinitionError, StudyStateError
from core.mrmc import analyze, load_ratings_csv
from core.study.design import modality_order, plan_diagnosis
from core.study.diagnosis import diagnosis_results
from core.study.export import export_study, import_votes
from core.study.reading import ReadingSession
from core.study.store import Vote, open_store
from tests.study_helpers import make_study, write_cases

READERS = ["MD I", "MD II", "MD III"]


def _diagnosis(store, env, name="Dx", washout=0.0, scale=None):
    write_cases(env.tmp / "cases", 8)
    return make_study(store, env.tmp / "cases", name=name, kind="diagnosis", design="all", show_label=False,
                      readers=3, washout_days=washout, rating_scale=scale, seed=2)


def _read_everything(store, name="Dx", rng_seed=0):
    """Every reader rates every image; diseased cases tend to get higher ratings, more so with CLAHE."""
    rng = np.random.default_rng(rng_seed)
    for reader in READERS:
        session = ReadingSession(store, name, reader)
        for i in range(session.total):
            q = session._queries[i]
            diseased = q.case.label == "COVID-19"
            boost = 1 if q.panes[0].spec.spec.startswith("clahe") else 0
            rating = int(np.clip(round(2 + 2 * diseased * (0.5 + 0.5 * boost) + rng.normal(0, 0.8)), 1, 5))
            session.rate(rating, index=i)


def test_plan_is_fully_crossed_and_counterbalanced():
    p = plan_diagnosis(10, 3, 3, seed=1)
    for r, queries in enumerate(p):
        assert len(queries) == 30
        sessions = [[q for q in queries if q.session == s] for s in range(3)]
        assert [{q.panes for q in sess} for sess in sessions] == [{(m,)} for m in modality_order(r, 3)]
        assert all(sorted(q.case for q in sess) == list(range(10)) for sess in sessions)
    firsts = [p[r][0].panes[0] for r in range(3)]
    assert sorted(firsts) == [0, 1, 2]  # each modality first for one reader


def test_definition_rules(study_env):
    write_cases(study_env.tmp / "cases", 4)
    with open_store(study_env.tmp / "s.db") as store:
        for settings, reason in (({"show_label": True, "design": "all"}, "hides the disease label"),
                                 ({"show_label": False, "design": "split"}, "fully crossed"),
                                 ({"show_label": False, "design": "all", "rating_scale": "7"}, "rating scale")):
            with pytest.raises(StudyDefinitionError, match=reason):
                make_study(store, study_env.tmp / "cases", name="Bad", kind="diagnosis", **settings)


def test_reading_is_blind_and_sessions_wait_for_the_washout(study_env):
    with open_store(study_env.tmp / "s.db") as store:
        _diagnosis(store, study_env, washout=2.0)
        session = ReadingSession(store, "Dx", "MD I")
        assert session.is_diagnosis and session.rating_range == (1, 5) and "COVID-19" in session.question
        view = session.view(0)
        assert view.disease_label is None and len(view.panes) == 1 and view.panes[0].label == "A"
        with pytest.raises(StudyStateError, match="takes a rating"):
            session.vote("A")
        with pytest.raises(StudyStateError, match="from 1 to 5"):
            session.rate(6)
        with pytest.raises(StudyStateError, match="finish session 1"):
            session.rate(3, index=8)
        for i in range(8):
            session.rate(3, index=i)
        with pytest.raises(StudyStateError, match="washout: session 2 opens"):
            session.rate(3, index=8)
        with pytest.raises(StudyStateError, match="washout"):
            session.view(8)
        # two days later (move the recorded times back) the next session opens
        with store.write() as s:
            for vote in s.scalars(select(Vote)):
                vote.voted_at = vote.voted_at - timedelta(days=2, minutes=1)
        later = ReadingSession(store, "Dx", "MD I")
        assert later.session_opens_at(8) is None
        assert later.rate(4, index=8).pane == "A"


def test_analysis_matches_the_standalone_command_and_exports(study_env, tmp_path, capsys):
    with open_store(study_env.tmp / "s.db") as store:
        _diagnosis(store, study_env)
        with pytest.raises(StudyStateError, match="cannot analyse yet: no ratings"):
            diagnosis_results(store, "Dx")
        _read_everything(store)
        results = diagnosis_results(store, "Dx")
        assert results.random.auc.shape == (3, 3)
        assert results.fixed_readers.test.statistic_name == "X2"
        exported = export_study(store, "Dx", tmp_path / "out")
    names = [p.name for p in exported.files]
    assert names == ["votes.csv", "ratings.csv", "mrmc.json", "mrmc.txt", "roc.png"]
    # the exported ratings table is the standalone command's input and gives the same numbers
    table = load_ratings_csv(tmp_path / "out" / "ratings.csv")
    again = analyze(table, "jackknife")
    assert np.allclose(again.auc, results.random.auc) and again.test.p == pytest.approx(results.random.test.p)
    summary = json.loads((tmp_path / "out" / "mrmc.json").read_text())
    assert set(summary["readers_and_cases_random"]) >= {"auc", "mean_auc", "difference", "covariance"}
    with open(tmp_path / "out" / "votes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 3 * 8 and all(r["rating"] for r in rows)
    assert main(["study", "stats", "Dx", "--database", str(study_env.tmp / "s.db"), "--json"]) == 0
    assert "readers_and_cases_random" in json.loads(capsys.readouterr().out)
    # a second site with the same definition merges the ratings
    with open_store(study_env.tmp / "b.db") as other:
        _diagnosis(other, study_env)
        assert import_votes(other, tmp_path / "out" / "votes.csv") == len(rows)
        assert np.allclose(diagnosis_results(other, "Dx").random.auc, results.random.auc)


def test_percent_scale(study_env):
    with open_store(study_env.tmp / "s.db") as store:
        _diagnosis(store, study_env, scale="0-100")
        session = ReadingSession(store, "Dx", "MD II")
        assert session.rating_range == (0, 100)
        session.rate(73, index=0)
        assert ReadingSession(store, "Dx", "MD II")._queries[0].rating == 73

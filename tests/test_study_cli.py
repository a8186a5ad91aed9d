"""The ``r2c-review study`` commands end to end, one-line errors, and the demo study."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main
from core.study.manage import list_readers, load_study
from core.study.reading import ReadingSession
from core.study.render import rendition_status
from core.study.store import open_store
from tests.study_helpers import install_generator, write_cases

pytestmark = pytest.mark.usefixtures("study_env")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_study_commands_end_to_end(study_env, capsys):
    tmp = study_env.tmp
    write_cases(tmp / "cases", 4)
    db, db2 = str(tmp / "a.db"), str(tmp / "b.db")
    args = ["--cases", str(tmp / "cases"), "--candidates", "original,clahe,histeq", "--readers", "Ann,Bob",
            "--design", "anchor", "--anchor", "2", "--seed", "3"]
    rc, out, _ = run(capsys, "study", "create", "Cli", *args, "--database", db, "--precompute")
    assert rc == 0 and "created study 'Cli'" in out and "12/12 renditions cached" in out
    assert run(capsys, "study", "create", "Sure", *args, "--ask-confidence", "--database", db)[0] == 0
    with open_store(db) as store:
        assert load_study(store, "Sure").ask_confidence and not load_study(store, "Cli").ask_confidence
        assert load_study(store, "Sure").fingerprint != load_study(store, "Cli").fingerprint
    rc, out, _ = run(capsys, "study", "status", "Sure", "--database", db)
    assert rc == 0 and "confidence asked (1-5)" in out
    assert run(capsys, "study", "create", "Cli", *args, "--database", db2)[0] == 0
    rc, out, _ = run(capsys, "study", "list", "--database", db)
    assert rc == 0 and out.startswith("Cli\trestoration\t4 cases")
    with open_store(db) as store:
        session = ReadingSession(store, "Cli", "Ann")
        for i in range(session.total):
            session.vote("B", index=i)
    rc, out, _ = run(capsys, "study", "status", "Cli", "--database", db)
    assert rc == 0 and "renditions cached: 12/12" in out and "Ann: 3/3 answered" in out and "Bob: 0/3" in out
    assert "confidence not asked" in out
    rc, out, _ = run(capsys, "study", "stats", "Cli", "--database", db)
    assert rc == 0 and "| Ann | 3 |" in out and "Pane-position bias" in out
    rc, out, _ = run(capsys, "study", "stats", "Cli", "--json", "--database", db)
    assert json.loads(out)["rows"][0]["n"] == 3
    rc, out, _ = run(capsys, "study", "export", "Cli", "--out", str(tmp / "out"), "--database", db)
    assert rc == 0 and "exported 3 votes" in out
    rc, out, _ = run(capsys, "study", "import-votes", str(tmp / "out" / "votes.csv"), "--database", db2)
    assert rc == 0 and "imported 3 votes" in out
    with open_store(db2) as store:
        assert [(r.name, r.done) for r in list_readers(store, "Cli")] == [("Ann", 3), ("Bob", 0)]


@pytest.mark.parametrize("argv, message", [
    (["study", "status", "Nope"], "Nope: no such study (the database has no studies yet)"),
    (["study", "create", "X", "--cases", "{tmp}/missing", "--candidates", "clahe"], "missing: not found"),
    (["study", "create", "X", "--cases", "{tmp}/cases", "--candidates", "original,r2c-q9"],
     "r2c-q9: unknown candidate"),
    (["study", "create", "X", "--cases", "{tmp}/cases"], "no generator weights are installed"),
    (["study", "create", "X", "--cases", "{tmp}/bad.csv", "--candidates", "clahe", "--n-readers", "1"],
     "bad.csv: 2 bad row(s): row 2: file gone.png not found; row 3: unknown label 'flu'"),
    (["study", "import-votes", "{tmp}/nope.csv"], "nope.csv: votes file not found"),
    (["study", "stats", "X", "--database", "postgresql://u:p@127.0.0.1:1/db"], "cannot open the study database"),
])
def test_errors_are_one_line(study_env, capsys, argv, message):
    tmp = study_env.tmp
    write_cases(tmp / "cases", 2)
    (tmp / "bad.csv").write_text("file,label\ngone.png,control\ncases/covid_0002.png,flu\n")
    argv = [a.format(tmp=tmp) for a in argv]
    if "--database" not in argv:
        argv += ["--database", str(tmp / "s.db")]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("r2c-review: error: ")
    assert message in err


def test_demo_study_from_phantoms(study_env):
    from core.study.demo import DEMO_NAME, create_demo_study

    install_generator(study_env.models)
    seen = []
    db = study_env.tmp / "demo.db"
    demo = create_demo_study(db, study_env.tmp / "work", progress=lambda d, t: seen.append((d, t)), cases=4)
    assert demo.name == DEMO_NAME and seen[-1] == (16, 16)
    assert demo.images == (study_env.tmp / "work" / "phantoms").resolve() and demo.database == f"sqlite:///{db}"
    name = demo.name
    pngs = sorted(p.name for p in demo.images.glob("*.png"))
    assert pngs == ["control_0001.png", "control_0003.png", "covid_0002.png", "covid_0004.png"]
    with open_store(db) as store:
        info = load_study(store, name)
        assert [c.spec.spec for c in info.candidates] == ["original", "r2c-q1:3", "clahe:2", "histeq"]
        assert {c.label for c in info.cases} == {"COVID-19", "control"}
        assert rendition_status(store, name) == (16, 16)
        view = ReadingSession(store, name, "MD I").current()
        assert len(view.panes) == 4 and {p.image.shape for p in view.panes} <= {(512, 512), (427, 512)}
        assert len({p.image.shape for p in view.panes}) == 1
    assert create_demo_study(db, study_env.tmp / "work", cases=4).name == DEMO_NAME  # same inputs: reused
    install_generator(study_env.models, seed=5)  # other weights: a new demo study, the old one untouched
    assert create_demo_study(db, study_env.tmp / "work", precompute=False, cases=4).name == f"{DEMO_NAME} (2)"


def test_demo_images_live_beside_a_database_file(study_env, monkeypatch):
    from core.study.demo import create_demo_study, default_demo_dir

    monkeypatch.setattr("core.study.demo.default_database_path", lambda: study_env.tmp / "default" / "studies.db")
    monkeypatch.setattr("core.study.demo.platformdirs.user_data_dir", lambda _app: str(study_env.tmp / "default"))
    with open_store(study_env.tmp / "site" / "s.db") as store:
        assert default_demo_dir(store) == study_env.tmp / "site" / "r2c-demo"
        demo = create_demo_study(store, precompute=False, cases=2)
        assert demo.images == study_env.tmp / "site" / "r2c-demo" / "phantoms" and len(list(demo.images.iterdir()))
    with open_store(study_env.tmp / "default" / "studies.db") as store:
        assert default_demo_dir(store) == study_env.tmp / "default" / "demo"
    assert default_demo_dir(type("S", (), {"sqlite_file": None})()) == study_env.tmp / "default" / "demo"

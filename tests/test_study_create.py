"""Creating studies: every bad input gets a clear error naming the file/row, and nothing half-created."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import StudyDefinitionError
from core.study.definition import ORIGINAL, normalize_label, parse_candidate, parse_candidates, read_cases
from core.study.manage import list_readers, list_studies, load_study
from core.study.store import Assignment, Study
from tests.study_helpers import install_generator, make_study, write_cases

pytestmark = pytest.mark.usefixtures("study_env")


@pytest.fixture
def cases(study_env) -> Path:
    write_cases(study_env.tmp / "cases", 6)
    return study_env.tmp / "cases"


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _row_count(store, model) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(model))


# --------------------------------------------------------------------------- candidates


def test_candidate_specs_parse_to_canonical_forms(study_env):
    assert parse_candidate("original") == ORIGINAL
    q3 = parse_candidate("r2c-q3")
    assert (q3.spec, q3.iterations, q3.display_name) == ("r2c-q3:3", 3, "R2C-GAN (Q=3)")
    assert parse_candidate("r2c-cnn").spec == "r2c-cnn:1"  # the deep model: once, as in the paper
    assert parse_candidate(" R2C-Q1:5 ").display_name == "R2C-GAN (Q=1) ×5"
    assert parse_candidate("r2c-q1", {"r2c-q1": 2}).spec == "r2c-q1:2"  # default from the installed manifest
    assert parse_candidate("clahe").spec == "clahe:2"
    assert parse_candidate("clahe:3.5").display_name == "CLAHE (clip 3.5)"
    assert parse_candidate("histeq").display_name == "Histogram equalization"
    specs = [c.spec for c in parse_candidates("clahe, r2c-q1:3")]
    assert specs == ["original", "clahe:2", "r2c-q1:3"]  # original always first


@pytest.mark.parametrize("text, reason", [
    ("r2c-q7", "unknown candidate"),
    ("unet", "unknown candidate"),
    ("r2c-q3:0", "iterations must be"),
    ("r2c-q3:11", "iterations must be"),
    ("r2c-q3:two", "iterations must be"),
    ("clahe:-1", "clip limit"),
    ("histeq:3", "unknown candidate"),
])
def test_bad_candidate_specs_are_named(text, reason):
    with pytest.raises(StudyDefinitionError) as err:
        parse_candidate(text)
    assert reason in err.value.reason
    assert err.value.source == text


def test_duplicate_or_lonely_candidates_are_rejected():
    with pytest.raises(StudyDefinitionError, match="duplicate candidate"):
        parse_candidates("clahe,clahe:2")
    with pytest.raises(StudyDefinitionError, match="at least one candidate besides the original"):
        parse_candidates("original")


# --------------------------------------------------------------------------- cases


def test_folder_cases_with_labels_from_names(cases):
    specs = read_cases(cases)
    assert [c.key for c in specs][:2] == ["control_0001", "control_0003"]
    assert {c.label for c in specs} == {"COVID-19", "control"}
    assert all(len(c.sha256) == 64 for c in specs)


def test_csv_with_every_kind_of_bad_row_reports_all_rows(cases, study_env):
    shutil.copy(cases / "control_0001.png", cases / "copy_of_first.png")
    csv_path = _write_csv(study_env.tmp / "cases.csv", (
        "file,label,case\n"
        "cases/control_0001.png,control,a\n"
        "cases/missing.png,control,b\n"
        "cases/covid_0002.png,flu,c\n"
        "cases/covid_0004.png,COVID-19,a\n"
        "cases/copy_of_first.png,control,d\n"
        ",control,e\n"
    ))
    with pytest.raises(StudyDefinitionError) as err:
        read_cases(csv_path)
    assert err.value.source == str(csv_path)
    text = err.value.reason
    assert "row 3: file cases/missing.png not found" in text
    assert "row 4: unknown label 'flu'" in text
    assert "row 7: no file given" in text
    # duplicates are checked once the rows themselves are sound
    csv_path.write_text("file,label,case\ncases/control_0001.png,control,a\ncases/covid_0004.png,covid,a\n"
                        "cases/copy_of_first.png,control,d\n")
    with pytest.raises(StudyDefinitionError) as err:
        read_cases(csv_path)
    assert "row 3: duplicate case 'a' (also row 2)" in err.value.reason
    assert "row 4: duplicate case: copy_of_first.png has the same content as row 2" in err.value.reason
    assert len(err.value.problems) == 2


def test_csv_structure_errors(study_env):
    with pytest.raises(StudyDefinitionError, match="case list not found"):
        read_cases(study_env.tmp / "nope.csv")
    bad = _write_csv(study_env.tmp / "bad.csv", "name,label\nx.png,control\n")
    with pytest.raises(StudyDefinitionError, match="needs a column named file or path or image"):
        read_cases(bad)
    empty = _write_csv(study_env.tmp / "empty.csv", "file,label\n")
    with pytest.raises(StudyDefinitionError, match="lists no cases"):
        read_cases(empty)
    (study_env.tmp / "nothing").mkdir()
    with pytest.raises(StudyDefinitionError, match="no images"):
        read_cases(study_env.tmp / "nothing")


def test_label_aliases():
    assert normalize_label("Covid19") == "COVID-19"
    assert normalize_label(" control ") == "control"
    assert normalize_label("") is None
    with pytest.raises(ValueError):
        normalize_label("pneumonia")


# --------------------------------------------------------------------------- whole study


def test_create_writes_the_plan(store, cases):
    info = make_study(store, cases, design="anchor", anchor_cases=2, qc_repeats=1, seed=9)
    assert [c.spec.spec for c in info.candidates] == ["original", "clahe:2", "histeq"]
    assert [r.name for r in info.readers] == ["MD I", "MD II"]
    assert [(r.done, r.total) for r in list_readers(store, "S")] == [(0, 5), (0, 5)]  # 2 anchors + 2 + 1 repeat
    assert list_studies(store)[0].queries == 10
    again = load_study(store, info.id)
    assert again.fingerprint == info.fingerprint and len(info.fingerprint) == 64


def test_list_studies_says_what_a_study_list_needs(store, cases):
    from core.study.reading import ReadingSession

    first = make_study(store, cases, design="anchor", anchor_cases=2, qc_repeats=1, seed=9)
    second = make_study(store, cases, name="T", candidates="histeq", readers=1, design="all", show_label=False,
                        ask_confidence=True, pane_labels="numbers", presentation_size=384)
    session = ReadingSession(store, "S", "MD II")
    session.vote("A")
    session.vote("B")  # an amendment: still one answered query
    s, t = list_studies(store)
    assert (s.id, s.name, s.cases, s.candidates, s.readers, s.queries, s.votes) == (first.id, "S", 6, 3, 2, 10, 2)
    assert (s.design, s.anchor_cases, s.qc_repeats, s.seed, s.show_label, s.ask_confidence) == \
        ("anchor", 2, 1, 9, True, False)
    assert s.candidate_names == ("Original", "CLAHE", "Histogram equalization")
    assert [(r.name, r.done, r.total) for r in s.reader_progress] == [("MD I", 0, 5), ("MD II", 1, 5)]
    assert (t.id, t.design, t.show_label, t.ask_confidence, t.pane_labels, t.presentation_size) == \
        (second.id, "all", False, True, "numbers", 384)
    assert t.candidate_names == ("Original", "Histogram equalization") and t.votes == 0
    assert [(r.name, r.done, r.total) for r in t.reader_progress] == [("MD I", 0, 6)]


@pytest.mark.parametrize("settings, reason", [
    ({"name": " "}, "study name"),
    ({"design": "random"}, "design 'random'"),
    ({"design": "anchor", "anchor_cases": 0}, "anchor cases must be between"),
    ({"design": "anchor", "anchor_cases": 5}, "non-anchor case(s) cannot be split"),
    ({"anchor_cases": 2}, "anchor design only"),
    ({"kind": "detection"}, "study type"),
    ({"presentation_size": 100}, "presentation size"),
    ({"qc_repeats": -1}, "cannot be negative"),
    ({"seed": -5}, "seed"),
])
def test_bad_settings_are_rejected_and_nothing_is_created(store, cases, settings, reason):
    name = settings.pop("name", "S")
    with pytest.raises(StudyDefinitionError) as err:
        make_study(store, cases, name=name, **settings)
    assert reason in err.value.reason
    assert _row_count(store, Study) == 0 and _row_count(store, Assignment) == 0


def test_too_many_readers_for_a_split(store, cases):
    with pytest.raises(StudyDefinitionError, match="cannot split 6 case"):
        make_study(store, cases, readers=7)


def test_unlabelled_case_when_labels_are_shown(store, study_env):
    write_cases(study_env.tmp / "mixed", 2)
    (study_env.tmp / "mixed" / "control_0001.png").rename(study_env.tmp / "mixed" / "anon.png")
    with pytest.raises(StudyDefinitionError, match="'anon' has no disease label"):
        make_study(store, study_env.tmp / "mixed", readers=1)
    assert make_study(store, study_env.tmp / "mixed", readers=1, show_label=False).cases[0].label is None


def test_duplicate_study_name(store, cases):
    make_study(store, cases)
    with pytest.raises(StudyDefinitionError, match="already exists"):
        make_study(store, cases)
    assert _row_count(store, Study) == 1


def test_generator_without_weights_is_a_definition_error(store, cases):
    with pytest.raises(StudyDefinitionError) as err:
        make_study(store, cases, candidates="r2c-q3")
    assert err.value.source == "r2c-q3:3" and "no trained weights installed for r2c-q3" in err.value.reason


def test_generator_candidate_is_pinned_to_its_weights(store, cases, study_env):
    install_generator(study_env.models)
    info = make_study(store, cases, candidates="r2c-q1")
    assert info.candidates[1].spec.spec == "r2c-q1:3"  # manifest default
    assert len(info.candidates[1].model_sha256) == 64


def test_unreadable_image_fails_creation_whole(store, study_env):
    folder = study_env.tmp / "broken"
    write_cases(folder, 3)
    (folder / "covid_0002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(StudyDefinitionError, match="unreadable image.*covid_0002"):
        make_study(store, folder, readers=1)
    assert _row_count(store, Study) == 0


def test_real_xrays_from_the_shared_data(store, study_env, labeled_dir, dicom_dir):
    """Real PNGs with the data set's own labels.csv values, and DICOM: a broken one fails creation whole."""
    from core.study.render import precompute, rendition_status

    rows = (labeled_dir / "labels.csv").read_text().splitlines()
    picked = [rows[1], *[r for r in rows[1:] if r.startswith("control_")][:2]]
    csv_path = _write_csv(study_env.tmp / "real.csv", "file,label\n" + "".join(
        f"{labeled_dir / r.split(',')[0]},{r.split(',')[1]}\n" for r in picked))
    info = make_study(store, read_cases(csv_path), name="Real", readers=1)
    assert [c.label for c in info.cases] == ["COVID-19", "control", "control"]
    precompute(store, "Real")
    assert rendition_status(store, "Real") == (9, 9)

    folder = study_env.tmp / "dicom"
    folder.mkdir()
    for name in ("fodicom_CR-MONO1-10-chest.dcm", "pylibjpegdata_966_BROKEN_J2K.dcm"):
        shutil.copy(dicom_dir / name, folder / name)
    with pytest.raises(StudyDefinitionError) as err:
        make_study(store, folder, name="Dicom", readers=1, show_label=False)
    assert err.value.source.endswith("pylibjpegdata_966_BROKEN_J2K.dcm")
    (folder / "pylibjpegdata_966_BROKEN_J2K.dcm").unlink()
    info = make_study(store, folder, name="Dicom", readers=1, show_label=False)
    assert precompute(store, "Dicom").computed == 3

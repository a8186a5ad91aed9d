"""Study presentation: "paper" (256 px) or "native" (guided upsampling to the film, then the same
downsampling); stored with the study, part of its fingerprint, and blind (every pane of a case the
same size, type and resampling path)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.enhance import clahe, histeq
from core.errors import StudyDefinitionError
from core.study import images
from core.study.definition import StudySpec, default_reader_names, parse_candidates, read_cases
from core.study.manage import fingerprint, list_studies, load_study
from core.study.presentation import native_pane, pane_shape
from core.study.render import Renderer, RenditionCache, matched_input, precompute, rendition_key, to_presentation
from core.study.store import open_store
from tests.study_helpers import install_generator, install_segmenter, make_study, write_cases

pytestmark = pytest.mark.usefixtures("study_env")


@pytest.fixture
def native_study(store, study_env):
    """2 cases of 600 x 480 px, original + Q=1 stand-in + CLAHE + histeq, native at up to 400 px."""
    install_generator(study_env.models)
    write_cases(study_env.tmp / "cases", 2, size=(600, 480))
    return make_study(store, study_env.tmp / "cases", name="N", candidates="r2c-q1,clahe,histeq",
                      presentation="native", presentation_size=400)


def test_native_panes_share_size_type_and_path(store, native_study):
    renderer = Renderer(native_study, RenditionCache(store.cache_dir))
    for case in native_study.cases:
        pictures = [renderer.get(case, cand) for cand in native_study.candidates]
        display = images.load_display(case.path)
        expected = pane_shape(display.shape, 400, "native")
        assert max(expected) == 400 and abs(expected[0] / expected[1] - display.shape[0] / display.shape[1]) < 0.01
        assert {(p.shape, p.dtype) for p in pictures} == {(expected, np.dtype(np.uint8))}
        base = matched_input(display)
        # The original is carried to the film by the same guided upsampling (its change: none) and
        # downsampled the same way as every candidate, so it has their resampling history.
        np.testing.assert_array_equal(pictures[0], native_pane(display, base, base, 400))
        np.testing.assert_array_equal(pictures[2], native_pane(display, base, clahe(base), 400))
        np.testing.assert_array_equal(pictures[3], native_pane(display, base, histeq(base), 400))
        assert not np.array_equal(pictures[1], pictures[0])  # the generator changed something
        assert not np.array_equal(pictures[0], to_presentation(base, display.shape, 400))  # not the paper path


@pytest.mark.slow
@pytest.mark.parametrize("presentation", ["paper", "native"])
def test_segmentation_panes_are_alike_in_both_presentations(store, study_env, presentation):
    """Lung overlays drawn on each pane's own picture: still one size and type for every pane."""
    install_segmenter(study_env.models)
    write_cases(study_env.tmp / f"seg-{presentation}", 2, size=(500, 400))
    info = make_study(store, study_env.tmp / f"seg-{presentation}", name=f"Seg {presentation}", kind="segmentation",
                      presentation=presentation, presentation_size=384)
    renderer = Renderer(info, RenditionCache(store.cache_dir))
    for case in info.cases:
        pictures = [renderer.get(case, cand) for cand in info.candidates]
        assert len({(p.shape, p.dtype) for p in pictures}) == 1
        assert pictures[0].ndim == 3 and max(pictures[0].shape[:2]) == 384


def test_native_panes_are_never_upsampled_beyond_the_film(store, study_env):
    write_cases(study_env.tmp / "small", 2, size=(300, 240))
    info = make_study(store, study_env.tmp / "small", name="Small", presentation="native", presentation_size=1024)
    renderer = Renderer(info, RenditionCache(store.cache_dir))
    case = info.cases[0]
    shape = images.load_display(case.path).shape
    assert {renderer.get(case, c).shape for c in info.candidates} == {shape}


def test_presentation_is_stored_fingerprinted_and_keyed(store, native_study, study_env):
    assert (native_study.presentation, native_study.presentation_size) == ("native", 400)
    again = load_study(store, "N")
    assert (again.presentation, again.presentation_size) == ("native", 400)
    summary = next(s for s in list_studies(store) if s.name == "N")
    assert (summary.presentation, summary.presentation_size) == ("native", 400)

    paper = dataclasses.replace(native_study, presentation="paper")
    case, cand = native_study.cases[0], native_study.candidates[1]
    assert rendition_key(paper, case, cand) != rendition_key(native_study, case, cand)

    spec = StudySpec(name="F", cases=read_cases(study_env.tmp / "cases"),
                     candidates=parse_candidates("clahe"), readers=default_reader_names(2))
    native_spec = dataclasses.replace(spec, presentation="native")
    assert fingerprint(spec, {}, None) != fingerprint(native_spec, {}, None)


def test_a_native_study_precomputes_like_a_paper_one(store, native_study):
    result = precompute(store, native_study.id)
    assert (result.total, result.computed, result.missing) == (8, 8, 0)
    assert precompute(store, native_study.id).computed == 0  # resumable: all cached


def test_unknown_presentation_is_refused(study_env):
    write_cases(study_env.tmp / "bad", 2)
    spec = StudySpec(name="B", cases=read_cases(study_env.tmp / "bad"), candidates=parse_candidates("clahe"),
                     readers=default_reader_names(2), presentation="poster")
    with pytest.raises(StudyDefinitionError, match="presentation 'poster'"):
        spec.validate()


def test_the_command_line_chooses_the_presentation(study_env, capsys):
    from core.cli.main import main

    write_cases(study_env.tmp / "cli", 2, size=(600, 480))
    db = str(study_env.tmp / "cli.db")
    base = ["--cases", str(study_env.tmp / "cli"), "--candidates", "original,clahe", "--readers", "Ann",
            "--design", "all", "--database", db]
    assert main(["study", "create", "Native", *base]) == 0  # native is the default for new studies
    assert main(["study", "create", "Paper", *base, "--presentation", "paper"]) == 0
    capsys.readouterr()
    assert main(["study", "status", "Native", "--database", db]) == 0
    assert "panes native up to 1024 px" in capsys.readouterr().out
    with open_store(db) as s:
        native, paper = load_study(s, "Native"), load_study(s, "Paper")
    assert (native.presentation, native.presentation_size) == ("native", 1024)
    assert (paper.presentation, paper.presentation_size) == ("paper", 512)
    assert native.fingerprint != paper.fingerprint

"""Matched presentation, the rendition cache and precompute (progress, cancel, resume, pinning)."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from core.enhance import clahe, histeq
from core.errors import StudyStateError
from core.phantom import PhantomQuality, make_phantom
from core.study import images
from core.study.render import (
    Renderer,
    RenditionCache,
    matched_input,
    precompute,
    presentation_shape,
    rendition_key,
    to_presentation,
)
from tests.study_helpers import install_generator, install_segmenter, make_study, write_cases

pytestmark = pytest.mark.usefixtures("study_env")


@pytest.fixture
def gen_study(store, study_env):
    """2 cases (160 x 128 phantoms), original + Q=1 stand-in + CLAHE + histeq."""
    install_generator(study_env.models)
    write_cases(study_env.tmp / "cases", 2)
    return make_study(store, study_env.tmp / "cases", candidates="r2c-q1,clahe,histeq")


@pytest.fixture
def classic_study(store, study_env):
    """4 cases, original + CLAHE + histeq (no model: fast)."""
    write_cases(study_env.tmp / "classic", 4)
    return make_study(store, study_env.tmp / "classic", name="C")


def test_every_pane_goes_through_the_same_path(store, gen_study):
    renderer = Renderer(gen_study, RenditionCache(store.cache_dir))
    case = gen_study.cases[0]
    pictures = [renderer.get(case, cand) for cand in gen_study.candidates]
    shapes = {(p.shape, p.dtype) for p in pictures}
    assert shapes == {((410, 512), np.dtype(np.uint8))}  # 160 x 128 source: longer side 512, aspect kept
    display = images.load_display(case.path)
    base = matched_input(display)
    assert base.shape == (256, 256)
    # The original pane is the 256 x 256 model-input image upsampled like every other pane,
    # so it has no more detail than a restoration and cannot be spotted by resolution.
    np.testing.assert_array_equal(pictures[0], to_presentation(base, display.shape, 512))
    np.testing.assert_array_equal(pictures[2], to_presentation(clahe(base), display.shape, 512))
    np.testing.assert_array_equal(pictures[3], to_presentation(histeq(base), display.shape, 512))
    assert not np.array_equal(pictures[1], pictures[0])  # the generator changed something
    # Same window for all: full 8-bit range mapping of [0, 1], no per-pane stretching.
    assert pictures[0].max() <= round(float(display.max()) * 255) + 2


def test_matched_input_uses_the_restorers_resize():
    from core.restore import MODEL_INPUT, to_model_input
    from core.study import render

    assert render.MODEL_INPUT == MODEL_INPUT
    img = make_phantom(1, (600, 500))
    np.testing.assert_allclose(matched_input(img) * 2 - 1, to_model_input(img)[0], atol=1e-6)
    assert presentation_shape((500, 600), 512) == (427, 512)
    assert presentation_shape((600, 500), 512) == (512, 427)


def test_cache_files_are_opaque_and_keys_track_every_input(store, gen_study):
    precompute(store, gen_study.id)
    files = sorted(p for p in store.cache_dir.rglob("*") if p.is_file())
    assert len(files) == 8
    for f in files:
        assert re.fullmatch(r"[0-9a-f]{64}\.png", f.name), f.name
        assert f.parent.name == f.name[:2]
        data = f.read_bytes()
        for word in (b"r2c", b"clahe", b"histeq", b"original", b"tEXt", b"iTXt", b"zTXt"):
            assert word not in data
    case, cand = gen_study.cases[0], gen_study.candidates[1]
    key = rendition_key(gen_study, case, cand)
    import dataclasses

    other_model = dataclasses.replace(cand, model_sha256="0" * 64)
    other_size = dataclasses.replace(gen_study, presentation_size=768)
    other_file = dataclasses.replace(case, file_sha256="1" * 64)
    keys = {key, rendition_key(gen_study, case, other_model), rendition_key(other_size, case, cand),
            rendition_key(gen_study, other_file, cand), rendition_key(gen_study, case, gen_study.candidates[2])}
    assert len(keys) == 5


def test_precompute_reports_progress_cancels_and_resumes(store, classic_study):
    seen = []
    calls = {"n": 0}

    def cancel_after_first_chunk() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    first = precompute(store, "C", progress=lambda d, t: seen.append((d, t)), cancelled=cancel_after_first_chunk,
                       chunk=2)
    assert first.cancelled and first.computed == 6 and first.total == 12
    assert seen[0] == (0, 12) and seen[-1] == (6, 12)
    assert all(b[0] >= a[0] for a, b in zip(seen, seen[1:], strict=False))
    second = precompute(store, "C")
    assert (second.cached_before, second.computed, second.cancelled) == (6, 6, False)
    third = precompute(store, "C")
    assert (third.cached_before, third.computed) == (12, 0)


def test_changed_weights_are_refused_not_silently_used(store, gen_study, study_env):
    install_generator(study_env.models, seed=1)  # other weights under the same name
    renderer = Renderer(gen_study, RenditionCache(store.cache_dir))
    with pytest.raises(StudyStateError, match="not the ones study 'S' was created with"):
        renderer.render([gen_study.cases[0]])


def test_corrupt_cache_file_is_rendered_again(store, classic_study):
    renderer = Renderer(classic_study, RenditionCache(store.cache_dir))
    case, cand = classic_study.cases[0], classic_study.candidates[2]
    good = renderer.get(case, cand)
    renderer.cache.path(renderer.key(case, cand)).write_bytes(b"garbage")
    np.testing.assert_array_equal(renderer.get(case, cand), good)


def test_missing_image_is_a_clear_state_error(store, classic_study):
    classic_study.cases[1].path.unlink()
    renderer = Renderer(classic_study, RenditionCache(store.cache_dir))
    with pytest.raises(StudyStateError, match="cannot be made here.*missing"):
        renderer.get(classic_study.cases[1], classic_study.candidates[0])


def test_segmentation_study_overlays_masks_identically(store, study_env):
    install_segmenter(study_env.models)
    write_cases(study_env.tmp / "seg", 1)
    info = make_study(store, study_env.tmp / "seg", name="Seg", candidates="clahe", readers=1, kind="segmentation",
                      presentation_size=256)
    assert info.segmenter_sha256 and len(info.segmenter_sha256) == 64
    result = precompute(store, "Seg")
    assert result.computed == 2
    renderer = Renderer(info, RenditionCache(store.cache_dir))
    panes = [renderer.get(info.cases[0], c) for c in info.candidates]
    assert {(p.shape, p.dtype) for p in panes} == {((205, 256, 3), np.dtype(np.uint8))}
    gray = to_presentation(matched_input(images.load_display(info.cases[0].path)), (128, 160), 256)
    tinted = np.any(panes[0] != np.repeat(gray[..., None], 3, axis=2), axis=2)
    assert tinted.any()  # the (random) segmenter's mask is drawn


# --------------------------------------------------------------------------- the pieces


def test_enhancements_keep_the_display_convention():
    img = make_phantom(3, (256, 256), quality=0.2)
    for out in (clahe(img), histeq(img), clahe(img, 4.0, 4)):
        assert out.dtype == np.float32 and out.shape == img.shape
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert out.std() > img.std()  # more contrast on a washed-out film
    with pytest.raises(ValueError):
        clahe(img, 0)


def test_phantoms_look_like_chest_films(artifacts_dir):
    img = make_phantom(5, (600, 500))
    assert img.shape == (500, 600) and img.dtype == np.float32
    h, w = img.shape
    lung = img[int(h * 0.35):int(h * 0.55), int(w * 0.22):int(w * 0.32)].mean()
    spine = img[int(h * 0.35):int(h * 0.55), int(w * 0.49):int(w * 0.51)].mean()
    outside = img[int(h * 0.9):, :int(w * 0.03)].mean()
    assert spine > lung + 0.15 and lung > outside  # bright spine, dark lungs, darker air
    np.testing.assert_array_equal(img, make_phantom(5, (600, 500)))
    poor = make_phantom(5, (600, 500), quality=0.0)
    assert np.abs(poor - img).mean() > 0.02
    assert PhantomQuality.from_level(0).blur > PhantomQuality.from_level(1).blur
    sick = make_phantom(5, (600, 500), disease=True)
    assert sick[int(h * 0.45):int(h * 0.68)].mean() > img[int(h * 0.45):int(h * 0.68)].mean()
    strip = np.hstack([make_phantom(s, (300, 300), q, s % 2 == 1) for s, q in ((1, 1.0), (2, 0.5), (3, 0.0))])
    cv2.imwrite(str(artifacts_dir / "phantoms.png"), np.round(strip * 255).astype(np.uint8))

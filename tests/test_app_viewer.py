"""Viewer: window/level, invert, linked zoom/pan, flicker, compare with a stand-in generator, export."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from tests.app_helpers import (  # noqa: E402
    PATIENT_ID,
    PATIENT_NAME,
    drag,
    make_stand_in_generators,
    open_main_window,
    settle,
    wheel,
    write_test_dicom,
    write_test_png,
)

pytestmark = pytest.mark.gui


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path / "no-models"))
    # Hide the bundled weights too: these tests define exactly which models are installed.
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-resources")
    from app import engine

    engine.reset()
    yield tmp_path
    engine.reset()


@pytest.fixture
def window(qtbot, env: Path):
    win = open_main_window(qtbot, str(env / "study.db"))
    yield win
    win.close()
    settle(qtbot, 10)


def _open(qtbot, win, paths: list[Path], count: int) -> None:
    win.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: win.files.count() == count, timeout=20_000)
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) >= 1, timeout=20_000)
    settle(qtbot)


def test_window_level_drag_follows_the_formula(qtbot, window, env: Path) -> None:
    from core.imaging import Window, render, to_uint8

    dcm = write_test_dicom(env / "chest.dcm")
    _open(qtbot, window, [dcm], 1)
    pane = window.viewer.grid.panes()[0]
    xray = window.viewer.current_xray()
    base = xray.windows[0]
    assert np.array_equal(pane.rendered_gray(), xray.to_uint8())

    drag(pane, (100, 100), (164, 68))  # 64 px right (wider), 32 px up (lower level)
    w = pane.current_window()
    assert w.width == pytest.approx(base.width * (1 + 64 / 256))
    assert w.center == pytest.approx(base.center - 32 / 256 * base.width)
    expected = to_uint8(render(xray.values, Window(w.center, w.width, "", base.function), xray.invert))
    assert np.array_equal(pane.rendered_gray(), expected)

    # What reaches the screen is those pixels: at 1:1 the pane's centre shows the image's centre pixel.
    pane.one_to_one()
    qtbot.wait(20)
    shot = pane.grab().toImage()
    dpr = shot.devicePixelRatio()
    gx, gy = int(pane.width() / 2 * dpr), int(pane.height() / 2 * dpr)
    ix, iy = (int(v) for v in pane.widget_to_image(pane.rect().center().toPointF()))
    assert abs(shot.pixelColor(gx, gy).red() - int(expected[iy, ix])) <= 1

    # Invert: the same window, black and white swapped.
    pane.setFocus()
    qtbot.keyClick(pane, Qt.Key.Key_I)
    inverted = to_uint8(render(xray.values, Window(w.center, w.width, "", base.function), not xray.invert))
    assert np.array_equal(pane.rendered_gray(), inverted)

    # The file is remembered for File > Open recent.
    from app import settings

    assert settings.recent_items()[0] == str(dcm.resolve())

    # Patient identifiers are in the viewer's info panel.
    texts = " ".join(lbl.text() for lbl in window.viewer.info.findChildren(type(window.viewer.hint)))
    assert "Doe, Jane" in texts and PATIENT_ID in texts


def test_linked_zoom_pan_window_and_unlinking(qtbot, window, env: Path) -> None:
    a = write_test_dicom(env / "a.dcm", seed=1)
    b = write_test_png(env / "b.png", seed=2, size=(200, 240))
    _open(qtbot, window, [a, b], 2)
    window.files.selectAll()
    qtbot.waitUntil(lambda: len(window.viewer.grid.panes()) == 2 and len(window.viewer.xrays()) == 2,
                    timeout=20_000)
    settle(qtbot)
    p0, p1 = window.viewer.grid.panes()
    assert p0.size() == p1.size()

    wheel(p0, (p0.width() / 2, p0.height() / 2), 2)
    assert p0.state().zoom == pytest.approx(1.15**2)
    assert p1.state().zoom == pytest.approx(p0.state().zoom)
    drag(p0, (50, 50), (90, 70), Qt.MouseButton.MiddleButton)
    assert p0.state().center != (0.5, 0.5)
    assert p1.state().center == pytest.approx(p0.state().center)
    drag(p1, (50, 50), (80, 50))  # window/level on the other pane
    assert p0.state().width == pytest.approx(p1.state().width) and p0.state().touched

    window.viewer.link_geometry_action.setChecked(False)
    drag(p0, (50, 120), (50, 60), Qt.MouseButton.RightButton)  # right-drag up: zoom in
    assert p0.state().zoom > 1.15**2
    assert p1.state().zoom == pytest.approx(1.15**2)
    drag(p0, (50, 50), (20, 50))  # window still linked
    assert p1.state().width == pytest.approx(p0.state().width)
    window.viewer.link_window_action.setChecked(False)
    drag(p0, (50, 50), (90, 50))
    assert p1.state().width != pytest.approx(p0.state().width)

    # Flicker: the two panes alternate in the same place.
    window.viewer.flicker_action.setChecked(True)
    assert p0.isVisible() and not p1.isVisible()
    qtbot.waitUntil(lambda: p1.isVisible() and not p0.isVisible(), timeout=3000)
    assert p1.geometry() == p0.geometry()
    window.viewer.flicker_action.setChecked(False)
    assert p0.isVisible() and p1.isVisible()


def test_linked_monochrome1_and_monochrome2_panes_brighten_and_darken_together(qtbot, window, env: Path) -> None:
    """One drag convention (OHIF, Weasis): down = darker, right = wider, whatever the photometric."""
    from core.imaging import load_xray

    m1 = write_test_dicom(env / "m1.dcm", seed=4, photometric="MONOCHROME1")
    m2 = write_test_dicom(env / "m2.dcm", seed=4)
    assert load_xray(m1).invert and not load_xray(m2).invert
    _open(qtbot, window, [m1, m2], 2)
    window.files.selectAll()
    qtbot.waitUntil(lambda: len(window.viewer.grid.panes()) == 2 and len(window.viewer.xrays()) == 2,
                    timeout=20_000)
    settle(qtbot)
    panes = window.viewer.grid.panes()
    assert {p.image().invert for p in panes} == {True, False}

    def brightness() -> list[float]:
        return [float(p.rendered_gray().mean()) for p in panes]

    def contrast() -> list[float]:
        return [float(p.rendered_gray().std()) for p in panes]

    start = brightness()
    assert start[0] == pytest.approx(start[1], abs=1.0)  # the same film, stored both ways
    for source in panes:  # whichever pane is dragged, both follow it the same way
        before = brightness()
        drag(source, (100, 60), (100, 124))  # down: darker
        after = brightness()
        assert all(a < b - 5 for a, b in zip(after, before, strict=True)), (before, after)
        drag(source, (100, 124), (100, 60))  # back up: as it was
        assert brightness() == pytest.approx(before, abs=1e-6)
        drag(source, (100, 124), (100, 40))  # up: brighter
        assert all(a > b + 5 for a, b in zip(brightness(), before, strict=True))
        source.reset()
        assert brightness() == pytest.approx(start, abs=1e-6)

    low = contrast()
    drag(panes[1], (60, 100), (40, 100))  # left: narrower window, more contrast
    assert all(c > c0 for c, c0 in zip(contrast(), low, strict=True))
    # What reaches the screen follows the rendered pixels: both panes darker after a drag down.
    shots = [np.asarray(_gray_shot(p)).mean() for p in panes]
    drag(panes[0], (100, 60), (100, 140))
    assert all(np.asarray(_gray_shot(p)).mean() < s for p, s in zip(panes, shots, strict=True))


def _gray_shot(pane) -> np.ndarray:
    """The pane as drawn on screen, as 8-bit gray."""
    from PySide6.QtGui import QImage

    image = pane.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    return np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), -1)


def test_chest_presets_on_number_keys_in_display_units(qtbot, window, env: Path) -> None:
    m1 = write_test_dicom(env / "m1.dcm", seed=4, photometric="MONOCHROME1")
    m2 = write_test_dicom(env / "m2.dcm", seed=4)
    _open(qtbot, window, [m1, m2], 2)
    window.files.selectAll()
    qtbot.waitUntil(lambda: len(window.viewer.grid.panes()) == 2 and len(window.viewer.xrays()) == 2,
                    timeout=20_000)
    settle(qtbot)
    viewer = window.viewer
    panes = viewer.grid.panes()
    names = [w.name for w in panes[0].image().windows]
    assert names[:4] == [viewer.current_xray().windows[0].name, "Lung", "Mediastinum", "Bone"]
    assert [a.shortcut().toString() for a in viewer.preset_actions[:4]] == ["1", "2", "3", "4"]

    viewer._fill_presets()  # what the Window button's menu shows
    labels = [a.text() for a in viewer.presets_menu.actions()]
    assert labels[1].startswith("Lung  (W ") and labels[1].endswith("\t2")
    assert not any("e+" in t or "e-" in t for t in labels)

    default = panes[0].rendered_gray().copy()
    panes[0].setFocus()
    qtbot.keyClick(panes[0], Qt.Key.Key_2)  # number key 2: lung, on both linked panes
    assert [p.current_window().name for p in panes] == ["Lung", "Lung"]
    assert panes[0].rendered_gray().mean() > default.mean() + 5  # the dark lungs stretched up
    # MONOCHROME1 and MONOCHROME2 stores of one film look the same under the preset.
    assert np.abs(panes[0].rendered_gray().astype(int) - panes[1].rendered_gray().astype(int)).max() <= 1
    qtbot.keyClick(panes[0], Qt.Key.Key_4)
    assert [p.current_window().name for p in panes] == ["Bone", "Bone"]
    qtbot.keyClick(panes[0], Qt.Key.Key_1)
    assert np.array_equal(panes[0].rendered_gray(), default)


def _info_text(win) -> str:
    from PySide6.QtWidgets import QLabel

    return " ".join(lbl.text() for lbl in win.viewer.info.findChildren(QLabel))


def test_identifier_toggle_hides_them_remembered_per_context(qtbot, window, env: Path) -> None:
    from app import settings
    from app.viewer.page import CLINICAL, STUDY, TEACHING, ViewerPage

    dcm = write_test_dicom(env / "chest.dcm")
    _open(qtbot, window, [dcm], 1)
    viewer = window.viewer
    assert viewer.context() == CLINICAL and viewer.identifiers_action.isChecked()
    assert "Doe, Jane" in _info_text(window) and PATIENT_ID in _info_text(window)

    viewer.identifiers_action.trigger()  # hide
    text = _info_text(window)
    assert "Doe" not in text and PATIENT_ID not in text and "identifiers hidden" in text
    assert "20240102" in text and "F" in text.split()  # study date and sex still help the reading
    assert settings.value("viewer/show_identifiers/clinical") == "0"
    again = ViewerPage()  # remembered: a new viewer (the next start) keeps them hidden
    qtbot.addWidget(again)
    assert not again.identifiers_action.isChecked() and not again.info.shows_identifiers()

    viewer.identifiers_action.trigger()  # show again
    assert "Doe, Jane" in _info_text(window)
    # Study and teaching screens hide them by default, whatever clinical viewing does.
    for context in (STUDY, TEACHING):
        viewer.set_context(context)
        assert not viewer.identifiers_action.isChecked()
        assert "Doe" not in _info_text(window) and PATIENT_ID not in _info_text(window)
    viewer.set_context(CLINICAL)
    assert "Doe, Jane" in _info_text(window)
    # Running a study (administration or reading) puts the viewer in the study context.
    window.set_mode("admin")
    assert viewer.context() == STUDY
    window.set_mode("viewer")
    assert "Doe" not in _info_text(window)


def test_compare_without_weights_says_what_is_missing(qtbot, window, env: Path) -> None:
    png = write_test_png(env / "c.png")
    _open(qtbot, window, [png], 1)
    window.viewer.set_compare(True)
    label = window.viewer.compare.missing_label
    assert label.isVisible() and "No trained generators" in label.text()
    assert not window.viewer.compare.restore_button.isEnabled()


def test_compare_restores_shows_probability_and_exports(qtbot, window, env: Path, artifacts_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pydicom

    monkeypatch.setenv("R2C_MODELS_DIR", str(make_stand_in_generators(env / "models")))
    dcm = write_test_dicom(env / "chest.dcm")
    _open(qtbot, window, [dcm], 1)
    viewer = window.viewer
    viewer.set_compare(True)
    compare = viewer.compare
    qtbot.waitUntil(lambda: len(compare.results()) == 1, timeout=60_000)
    settle(qtbot)
    panes = viewer.grid.panes()
    assert len(panes) == 2
    result = compare.results()[0]
    assert 0.0 <= result.covid_probability <= 1.0
    assert "R2C-GAN (Q=1)" in panes[1].caption() and "COVID-19" in panes[1].caption()
    # a head never measured on other hospitals: the number is withheld, and the table says why
    assert "withheld" in panes[1].caption() and "%" not in panes[1].caption()
    cell = compare.table.item(1, 1)
    assert cell.text() == "COVID-19: withheld" and "never measured" in cell.toolTip()
    assert "not for diagnosis" in cell.toolTip()
    assert result.iterations == 3
    assert panes[1].image().values.shape == panes[0].image().values.shape
    # Native by default: the generator's change carried to the film's own pixels, not its 256-px output.
    assert compare.resolution() == "native"
    from core.guided import native_restoration

    xray = compare.source()
    np.testing.assert_allclose(result.display, native_restoration(xray.display, result.restoration.final), atol=1e-6)
    compare.set_resolution("model")
    settle(qtbot)
    np.testing.assert_allclose(viewer.grid.panes()[1].image().values, result.model_display, atol=1e-6)
    compare.set_resolution("native")
    settle(qtbot)

    # Lung overlay without a trained segmenter: one clear line, no crash.
    compare.overlay_check.setChecked(True)
    qtbot.waitUntil(lambda: "unavailable" in compare.seg_label.text(), timeout=20_000)
    assert "segmenter" in compare.seg_label.text()

    shots = artifacts_dir / "screenshots"
    shots.mkdir(exist_ok=True)
    window.grab().save(str(shots / "compare.png"))

    png_task = compare.export_to(env / "out.png", 0, "png")
    dcm_task = compare.export_to(env / "out.dcm", 0, "dcm")
    png16_task = compare.export_to(env / "out16.png", 0, "png", bits=16)
    settle(qtbot)
    assert png_task.finished.is_set() and dcm_task.finished.is_set() and png16_task.finished.is_set()
    from PIL import Image

    with Image.open(env / "out16.png") as im16:
        assert im16.mode.startswith("I") and im16.size == xray.size
    from core.imaging import load_xray

    assert load_xray(env / "out.png").size == xray.size  # the film's own size, not 256 x 256
    ds = pydicom.dcmread(env / "out.dcm")
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert "DERIVED" in list(ds.ImageType)
    source = pydicom.dcmread(dcm)
    assert (ds.Rows, ds.Columns) == (source.Rows, source.Columns)
    assert "R2C-GAN (Q=1)" in ds.DerivationDescription and "3 passes" in ds.DerivationDescription
    assert ds.SOPInstanceUID != source.SOPInstanceUID and ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.StudyInstanceUID == source.StudyInstanceUID and str(ds.PatientName) == PATIENT_NAME
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert [float(v) for v in ds.PixelSpacing] == [float(v) for v in source.PixelSpacing]
    assert np.array_equal(ds.pixel_array, np.rint(result.display * 255).astype(np.uint8))


def test_viewer_screenshot(qtbot, window, env: Path, artifacts_dir: Path) -> None:
    a = write_test_dicom(env / "a.dcm", seed=1)
    b = write_test_png(env / "b.png", seed=2, size=(400, 440))
    _open(qtbot, window, [a, b], 2)
    qtbot.waitUntil(window.files.thumbnails_done, timeout=20_000)
    window.files.selectAll()
    qtbot.waitUntil(lambda: len(window.viewer.xrays()) == 2, timeout=20_000)
    settle(qtbot)
    shots = artifacts_dir / "screenshots"
    shots.mkdir(exist_ok=True)
    assert window.grab().save(str(shots / "viewer.png"))


def _compare_with_lung_overlay(qtbot, window, env: Path, monkeypatch: pytest.MonkeyPatch, film: Path):
    """One film in compare mode with stand-in models, its restoration done and the lung overlay on."""
    from tests.app_helpers import make_stand_in_segmenter

    monkeypatch.setenv("R2C_MODELS_DIR", str(make_stand_in_segmenter(make_stand_in_generators(env / "models"))))
    _open(qtbot, window, [film], 1)
    viewer = window.viewer
    viewer.set_compare(True)
    compare = viewer.compare
    qtbot.waitUntil(lambda: len(compare.results()) == 1, timeout=60_000)
    compare.overlay_check.setChecked(True)
    qtbot.waitUntil(lambda: compare.segmentations() is not None, timeout=60_000)
    return viewer, compare


def test_compare_lung_overlay_and_areas(qtbot, window, env: Path, monkeypatch: pytest.MonkeyPatch,
                                       artifacts_dir: Path) -> None:
    viewer, compare = _compare_with_lung_overlay(qtbot, window, env, monkeypatch, write_test_png(env / "lungs.png"))
    settle(qtbot)
    panes = viewer.grid.panes()
    assert all(p.image().overlay is not None for p in panes)
    assert panes[0].image().overlay.shape == panes[0].image().values.shape
    assert compare.table.item(0, 2).text().endswith("%")  # lung share of the image
    (artifacts_dir / "screenshots").mkdir(exist_ok=True)
    window.grab().save(str(artifacts_dir / "screenshots" / "compare_lungs.png"))
    compare.opacity.setValue(80)
    assert panes[1].overlay_opacity() == pytest.approx(0.8)
    compare.overlay_check.setChecked(False)
    assert all(p.image().overlay is None for p in viewer.grid.panes())


@pytest.mark.slow
def test_compare_lung_mask_as_dicom_seg_and_back(qtbot, window, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mask is written as a DICOM SEG over the film (core.exports) and overlays the film when opened."""
    import highdicom as hd

    dcm = write_test_dicom(env / "chest.dcm")
    viewer, compare = _compare_with_lung_overlay(qtbot, window, env, monkeypatch, dcm)
    assert compare.seg_export_button.isEnabled()
    mask = compare.segmentations()[0].mask
    task = compare.export_segmentation(env / "lungs.seg.dcm")
    qtbot.waitUntil(task.finished.is_set, timeout=20_000)
    seg = hd.seg.segread(env / "lungs.seg.dcm")
    assert (seg.Rows, seg.Columns) == mask.shape
    compare.overlay_check.setChecked(False)
    compare.open_segmentation(env / "lungs.seg.dcm")
    qtbot.waitUntil(lambda: "DICOM SEG" in viewer.grid.panes()[0].caption(), timeout=20_000)
    original = viewer.grid.panes()[0].image()
    assert np.array_equal(original.overlay, mask)
    other = write_test_dicom(env / "other.dcm", seed=9)  # a SEG of another film is refused in one line
    errors: list[str] = []
    compare.status.connect(errors.append)
    monkeypatch.setattr("app.qt_util.show_error", lambda *_a: None)
    import pydicom

    foreign = pydicom.dcmread(env / "lungs.seg.dcm")
    foreign.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID = \
        pydicom.dcmread(other).SOPInstanceUID
    foreign.save_as(env / "foreign.seg.dcm")
    compare.open_segmentation(env / "foreign.seg.dcm")
    qtbot.waitUntil(lambda: any("segments another image" in e for e in errors), timeout=20_000)


def test_colour_renditions_render_and_window_per_channel(qtbot) -> None:
    """Segmentation-study panes are RGB (the lung outline drawn in); they show and window like gray ones."""
    from app.viewer.pane import ImagePane
    from app.viewer.state import PaneImage

    rgb = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    pane = ImagePane()
    qtbot.addWidget(pane)
    pane.resize(300, 200)
    pane.set_image(PaneImage.from_display(rgb.astype(np.float32) / 255), reset=True)
    pane.show()
    qtbot.waitExposed(pane)
    assert np.array_equal(pane.rendered_gray(), rgb)
    drag(pane, (50, 50), (50, 82))  # 32 px down: level up by 1/8 of the width, darker
    shown = pane.rendered_gray().astype(int)
    assert shown.shape == rgb.shape and (shown <= rgb).all() and (shown < rgb).any()
    assert pane.grab().toImage().pixelColor(150, 100).isValid()


def test_compare_shows_a_probability_only_with_its_measured_auc(qtbot, window, env: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule of issue 9: the number carries its out-of-source AUC; below 0.75 it is withheld unless the
    user asks (a remembered setting), and the reason is given."""
    from app import settings

    monkeypatch.setenv("R2C_MODELS_DIR", str(make_stand_in_generators(
        env / "models", ("r2c-q1", "r2c-cnn-light"), head_auc={"r2c-q1": 0.62, "r2c-cnn-light": 0.86})))
    _open(qtbot, window, [write_test_png(env / "c.png")], 1)
    compare = window.viewer.compare
    compare.refresh_variants()
    compare.set_checked_variants(["r2c-q1", "r2c-cnn-light"])
    compare.iterations.setValue(1)
    window.viewer.set_compare(True)
    qtbot.waitUntil(lambda: len(compare.results()) == 2, timeout=60_000)
    settle(qtbot)
    by_id = {r.variant_id: r for r in compare.results()}
    rows = {compare.table.item(i, 0).text(): i for i in range(compare.table.rowCount())}
    low = compare.table.item(rows[by_id["r2c-q1"].caption], 1)
    high = compare.table.item(rows[by_id["r2c-cnn-light"].caption], 1)
    assert low.text() == "COVID-19: withheld" and "AUC 0.62" in low.toolTip() and "below the 0.75" in low.toolTip()
    assert high.text() == f"COVID-19 {by_id['r2c-cnn-light'].covid_probability:.0%} (AUC 0.86)"
    assert "not for diagnosis" in high.toolTip()
    captions = [p.caption() for p in window.viewer.grid.panes()]
    assert any("withheld" in c for c in captions) and any("(AUC 0.86)" in c for c in captions)
    compare.unreliable_check.setChecked(True)
    settle(qtbot)
    low = compare.table.item(rows[by_id["r2c-q1"].caption], 1)
    assert low.text() == f"COVID-19 {by_id['r2c-q1'].covid_probability:.0%} (AUC 0.62)"
    assert "shown on request" in low.toolTip()
    assert settings.value("compare/show_unreliable_probability") == "1"  # remembered

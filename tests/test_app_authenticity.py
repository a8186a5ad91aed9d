"""Reader mode, creation and statistics of a real-or-synthetic study in the app: one film, Real/Synthetic
buttons and keys, nothing on screen that says which films are synthetic."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.app_helpers import open_main_window, settle, visible_texts  # noqa: E402
from tests.study_helpers import make_env  # noqa: E402
from tests.test_study_authenticity import _films  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def auth_db(tmp_path, monkeypatch):
    from core.study.authenticity import label_authenticity
    from core.study.definition import ORIGINAL, StudySpec, read_cases
    from core.study.manage import create_study
    from core.study.render import precompute
    from core.study.store import open_store

    make_env(tmp_path, monkeypatch)
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    _films(tmp_path / "films", 3, 3)
    database = str(tmp_path / "rs.db")
    with open_store(database) as store:
        create_study(store, StudySpec(name="RS", cases=label_authenticity(read_cases(tmp_path / "films")),
                                      candidates=[ORIGINAL], readers=["MD I", "MD II"], kind="authenticity",
                                      design="all", show_label=False, seed=1, presentation_size=320,
                                      ask_confidence=True))
        precompute(store, "RS")
    return database


def test_judging_by_buttons_and_keys_then_statistics(qtbot, auth_db):
    from core.study.reading import ReadingSession
    from core.study.store import Vote, open_store

    win = open_main_window(qtbot, auth_db, size=(1100, 700))
    win.open_reader_named("RS", "MD I")
    page = win.page("reader")
    view = page.view
    qtbot.waitUntil(view.showing_case, timeout=60_000)
    settle(qtbot)
    assert len(view.panes()) == 1 and view.answer_box.isVisible()
    assert "real or synthetic" in view.question.text()
    given = []
    for i in range(6):
        qtbot.waitUntil(lambda i=i: view.showing_case() and view.progress.text() == f"{i + 1} / 6", timeout=30_000)
        texts = " ".join(t for _, t in visible_texts(win)).lower()
        assert "film_" not in texts and "pix2pix" not in texts and "synthetic-" not in texts
        assert not view.confirm_button.isEnabled()
        synthetic = bool(i % 2)
        if i < 3:
            qtbot.keyClick(view, Qt.Key.Key_S if synthetic else Qt.Key.Key_R)
            qtbot.keyClick(view, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
            assert view.choice_label.text() == f"Your answer: {'Synthetic' if synthetic else 'Real'}"
            qtbot.keyClick(view, Qt.Key.Key_Return)
        else:
            qtbot.mouseClick(view.answer_buttons[int(synthetic)], Qt.MouseButton.LeftButton)
            assert not view.confirm_button.isEnabled()  # confidence still missing
            qtbot.mouseClick(view.confidence_buttons[3], Qt.MouseButton.LeftButton)
            qtbot.mouseClick(view.confirm_button, Qt.MouseButton.LeftButton)
        given.append(int(synthetic))
        qtbot.waitUntil(lambda: page.votes_pending() == 0, timeout=20_000)
    settle(qtbot)
    win.close()
    settle(qtbot, 20)
    win.service.close()
    with open_store(auth_db) as store:
        with store.read() as s:
            votes = s.scalars(select(Vote).order_by(Vote.id)).all()
        assert [v.rating for v in votes] == given
        assert [v.confidence for v in votes] == [3, 3, 3, 4, 4, 4]
        other = ReadingSession(store, "RS", "MD II")
        for i in range(other.total):
            other.judge(other._queries[i].case.label == "synthetic", 5, index=i)
    from app.study_service import StudyService

    service = StudyService(auth_db)
    try:
        study_id = next(s.id for s in service.list_studies() if s.name == "RS")
        stats = service.statistics(study_id)
    finally:
        service.close()
    assert stats.columns[0] == "Accuracy" and "Synthetic films judged real" in stats.columns
    assert [r.name for r in stats.rows] == ["MD I", "MD II", "Overall, readers & cases random"]
    assert stats.rows[1].cells[0].ratio == 1.0
    assert any("vs 50%" in name for name, _ in stats.tests) and "chance = 50%" in stats.summary


def test_new_study_dialog_offers_the_kind(qtbot, tmp_path, monkeypatch):
    from app.admin.new_study import NewStudyDialog

    make_env(tmp_path, monkeypatch)
    _films(tmp_path / "films", 2, 2)
    dialog = NewStudyDialog()
    qtbot.addWidget(dialog)
    dialog.kind.setCurrentIndex(dialog.kind.findData("authenticity"))
    assert not dialog.variants.isEnabled() and not dialog.show_label.isChecked()
    assert dialog.presentation.currentData() == "paper" and not dialog.qc.isEnabled()
    dialog.name.setText("RS")
    dialog.source.setText(str(tmp_path / "films"))
    dialog.readers.setPlainText("MD I\nMD II")
    for i in range(dialog.variants.count()):
        dialog.variants.item(i).setCheckState(Qt.CheckState.Unchecked)
    assert dialog.problem() is None
    request = dialog.spec()
    request.admin_password = None
    from app.study_service import StudyService

    service = StudyService(str(tmp_path / "new.db"))
    try:
        service.create_study(request)
        summary = next(s for s in service.list_studies() if s.name == "RS")
        assert summary.kind == "authenticity" and summary.cases == 4 and summary.candidates == ["Original"]
    finally:
        service.close()
    dialog.kind.setCurrentIndex(dialog.kind.findData("restoration"))
    assert dialog.variants.isEnabled() and dialog.qc.isEnabled()


def test_viewer_synthesize_action_writes_a_marked_film_and_shows_it(qtbot, tmp_path, monkeypatch):
    """The viewer's Synthesize… action: a PNG named and tagged SYNTHETIC, shown beside its source."""
    import cv2
    import torch

    from app import engine
    from core.models.pix2pix import SYNTH_ARCH, SYNTH_ID, build_pix2pix_generator
    from core.phantom import make_phantom, to_uint8
    from core.synthesize import is_marked_synthetic
    from core.weights.model_file import Manifest, save_model

    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "settings"))
    models = tmp_path / "models"
    monkeypatch.setenv("R2C_MODELS_DIR", str(models))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-resources")
    engine.reset()
    torch.manual_seed(0)
    save_model(models / f"{SYNTH_ID}.safetensors", build_pix2pix_generator(base=8).state_dict(),
               Manifest(variant_id=SYNTH_ID, display_name="pix2pix (test)", kind="synthesizer",
                        architecture=SYNTH_ARCH, input_size=64, provenance={"config": {"base": 8}}))
    film = tmp_path / "normal_0001.png"
    cv2.imwrite(str(film), to_uint8(make_phantom(1, (200, 180), quality=0.9)))
    win = open_main_window(qtbot, str(tmp_path / "study.db"), size=(1100, 700))
    win.open_paths([str(film)])
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) == 1, timeout=20_000)
    assert win.viewer.synthesize_action.text() == "Synthesize…"
    win.viewer.synthesize_current(out_dir=tmp_path / "out")
    out = tmp_path / "out" / "normal_0001_SYNTHETIC-pix2pix.png"
    qtbot.waitUntil(lambda: len(win.viewer.xrays()) == 2, timeout=30_000)
    assert out.is_file() and is_marked_synthetic(out)
    assert [x.source.name for x in win.viewer.xrays()] == ["normal_0001.png", out.name]
    win.close()
    settle(qtbot, 10)
    engine.reset()

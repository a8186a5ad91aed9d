"""Reader mode and administration on the real study engine, with the demo study.

End to end: build the demo study (phantom films, a stand-in Q=1 generator), read it as
MD I with clicks and keys, close the app mid-way and reopen it on the same case, amend an
answer, finish, export, and check the exported numbers against the votes cast. Then the
blinding audit (MD II), the administration page with statistics, and the demo command's
window flow. Screenshots of reader mode and administration go to tests/_artifacts.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import csv  # noqa: E402
import re  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from tests.app_helpers import click, make_stand_in_generators, settle, visible_texts  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The demo study in a fresh database, built once for this module (blocking, as the CLI does)."""
    tmp = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R2C_MODELS_DIR", str(make_stand_in_generators(tmp / "models")))
        mp.setattr("core.variants.RESOURCES", tmp / "no-bundled-resources")
        mp.setenv("R2C_SETTINGS_DIR", str(tmp / "settings"))
        from app import engine
        from app.demo import build_demo

        engine.reset()
        info = build_demo(str(tmp / "studies.db"))
        yield info, str(tmp / "studies.db"), tmp
        engine.reset()


def _window(qtbot, database: str):
    from app.main_window import MainWindow

    win = MainWindow(database)
    qtbot.addWidget(win)
    win.resize(1280, 760)
    win.show()
    qtbot.waitExposed(win)
    return win


def _read_as(qtbot, win, study: str, reader: str):
    win.open_reader_named(study, reader)
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.view.showing_case(), timeout=60_000)
    settle(qtbot)
    return page


def _close(qtbot, win) -> None:
    win.close()
    settle(qtbot, 20)
    win.service.close()


def _pane_orders(database: str, study: str, reader: str) -> list[list[int]]:
    """Candidate positions in pane order for each of the reader's queries (what the GUI must never know)."""
    from sqlalchemy import select

    from core.study import load_study, open_store
    from core.study.store import Assignment

    with open_store(database) as store:
        info = load_study(store, study)
        reader_id = info.reader(reader).id
        with store.read() as s:
            rows = s.scalars(select(Assignment).where(Assignment.reader_id == reader_id)
                             .order_by(Assignment.seq)).all()
            return [[int(p) for p in a.pane_order.split(",")] for a in rows]


def test_end_to_end_reading_resume_amend_export(qtbot, demo, tmp_path: Path, artifacts_dir: Path) -> None:
    info, database, _tmp = demo
    assert "R2C-GAN (Q=1)" in info.candidates
    win = _window(qtbot, database)
    page = _read_as(qtbot, win, info.study, "MD I")
    view = page.view
    total = page.handle().total
    labels = view.case().pane_labels()
    assert labels == ["A", "B", "C", "D"][: len(labels)]
    assert view.progress.text() == f"1 / {total}"

    cast: dict[int, int] = {}  # position -> pane index (latest)

    def vote_click(pane: int) -> None:
        position = page.position()
        click(view.panes()[pane])
        qtbot.mouseClick(view.confirm_button, Qt.MouseButton.LeftButton)
        cast[position] = pane
        qtbot.waitUntil(lambda: page.votes_pending() == 0, timeout=20_000)

    def vote_keys(pane: int) -> None:
        position = page.position()
        qtbot.keyClick(view, getattr(Qt.Key, f"Key_{labels[pane]}"))
        qtbot.keyClick(view, Qt.Key.Key_Return)
        cast[position] = pane
        qtbot.waitUntil(lambda: page.votes_pending() == 0, timeout=20_000)

    vote_click(1)
    qtbot.waitUntil(view.showing_case, timeout=20_000)
    (artifacts_dir / "screenshots").mkdir(exist_ok=True)
    win.grab().save(str(artifacts_dir / "screenshots" / "reader.png"))
    vote_keys(2)
    qtbot.waitUntil(view.showing_case, timeout=20_000)
    vote_click(0)
    qtbot.waitUntil(view.showing_case, timeout=20_000)
    assert view.progress.text() == f"4 / {total}"
    qtbot.keyClick(view, Qt.Key.Key_Left)  # back to case 3 to look again, then quit
    qtbot.waitUntil(lambda: view.showing_case() and view.progress.text() == f"3 / {total}", timeout=20_000)
    assert view.choice() == 0
    _close(qtbot, win)

    # Reopen: exactly where the reader left off (case 3, their answer shown), with the same pictures.
    win = _window(qtbot, database)
    page = _read_as(qtbot, win, info.study, "MD I")
    view = page.view
    assert view.progress.text() == f"3 / {total}" and view.choice() == 0
    from core.study import ReadingSession, open_store

    with open_store(database) as store:
        expected = [p.image for p in ReadingSession(store, info.study, "MD I").view(2).panes]
    shown = [pane.image().values for pane in view.panes()]
    assert all(np.allclose(s * 255, e, atol=0.01) for s, e in zip(shown, expected, strict=True))
    vote_keys(3)  # amend case 3
    while page.position() < total:
        qtbot.waitUntil(view.showing_case, timeout=30_000)
        (vote_click if page.position() % 2 else vote_keys)(page.position() % len(labels))
    assert "answered" in view.blank.text()
    _close(qtbot, win)

    # Export from the administration page and check the numbers against the votes cast.
    win = _window(qtbot, database)
    win.set_mode("admin")
    admin = win.page("admin")
    admin.select_study_named(info.study)
    qtbot.waitUntil(lambda: admin.current_study() is not None and admin.current_study().name == info.study,
                    timeout=30_000)
    out = tmp_path / "export"
    admin.export_to(out)
    settle(qtbot)
    orders = _pane_orders(database, info.study, "MD I")
    with open(out / "votes.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["reader"] == "MD I"]
    latest = {int(r["sequence"]) - 1: r for r in rows if r["latest"] == "yes"}
    assert sorted(latest) == list(range(total))
    specs = {n: s for n, s in zip(info.candidates, _specs(database, info.study), strict=True)}
    for position, pane in cast.items():
        row = latest[position]
        assert int(row["pane_position"]) == pane + 1
        assert row["chosen_variant"] == _specs(database, info.study)[orders[position][pane]]
        assert row["decision_ms"] != ""
    assert sum(r["amendment"] == "yes" for r in rows) == 1
    counted = Counter(orders[p][pane] for p, pane in cast.items() if latest[p]["qc_repeat"] == "no")
    with open(out / "table_long.csv", newline="") as f:
        table = [r for r in csv.DictReader(f) if r["reader"] == "MD I"]
    for r in table:
        position = list(specs.values()).index(r["variant"])
        assert int(r["count"]) == counted.get(position, 0), r
        assert int(r["n"]) == sum(counted.values())
    _close(qtbot, win)


def _specs(database: str, study: str) -> list[str]:
    from core.study import load_study, open_store

    with open_store(database) as store:
        return [c.spec.spec for c in load_study(store, study).candidates]


def test_blinding_audit_in_reader_mode(qtbot, demo) -> None:
    info, database, tmp = demo
    from core.study import load_study, open_store
    from core.variants import VARIANTS

    with open_store(database) as store:
        study = load_study(store, info.study)
    secrets = {"original", "r2c-gan", tmp.name, str(tmp)}
    secrets |= {c.display_name.lower() for c in study.candidates} | {c.spec.spec.lower() for c in study.candidates}
    secrets |= {v.id for v in VARIANTS.values()} | {v.display_name.lower() for v in VARIANTS.values()}
    secrets |= {c.key.lower() for c in study.cases} | {c.path.name.lower() for c in study.cases}
    secrets |= {"clahe", "histogram", "enhance", "restor", ".png", ".dcm"}
    path_like = re.compile(r"[\w.~-]+[/\\][\w.-]+")  # "folder/file", never "12 / 50"
    win = _window(qtbot, database)
    page = _read_as(qtbot, win, info.study, "MD II")
    for _ in range(3):  # look at a few cases, including after votes
        texts = visible_texts(win)
        leaks = [(where, text) for where, text in texts for s in secrets if s in text.lower()]
        leaks += [(where, text) for where, text in texts if path_like.search(text)]
        assert not leaks, leaks
        panes = page.view.panes()
        assert len({p.size().toTuple() for p in panes}) == 1
        images = [p.image() for p in panes]
        assert len({(im.values.shape, im.values.dtype.str) for im in images}) == 1
        assert len({(w.center, w.width, w.function) for w in (im.base for im in images)}) == 1
        assert len({p.state() for p in panes}) == 1
        assert all(not p.toolTip() and p.caption() in ("A", "B", "C", "D", "E") for p in panes)
        qtbot.keyClick(page.view, Qt.Key.Key_A)
        qtbot.keyClick(page.view, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: page.votes_pending() == 0 and page.view.showing_case(), timeout=30_000)
    assert win.windowTitle() == "R2C Review — Reader"
    assert not win.files_dock.isVisible() and not win.viewer.isVisible()
    _close(qtbot, win)


def test_admin_overview_and_statistics(qtbot, demo, artifacts_dir: Path) -> None:
    info, database, _tmp = demo
    win = _window(qtbot, database)
    win.set_mode("admin")
    admin = win.page("admin")
    admin.select_study_named(info.study)
    qtbot.waitUntil(lambda: admin.current_study() is not None and admin.current_study().name == info.study,
                    timeout=30_000)
    study = admin.current_study()
    assert study.ready and study.precomputed[0] == study.precomputed[1]
    assert [r.name for r in study.readers] == info.readers
    assert admin.readers.item(0, 1).text().endswith(f"/ {study.readers[0].assigned}")
    shots = artifacts_dir / "screenshots"
    shots.mkdir(exist_ok=True)
    win.grab().save(str(shots / "admin.png"))
    admin.tabs.setCurrentWidget(admin.stats)
    qtbot.waitUntil(lambda: admin.stats.stats() is not None, timeout=30_000)
    stats = admin.stats.stats()
    assert stats.columns == info.candidates
    assert [r.name for r in stats.rows] == [*info.readers, "Overall"]
    assert admin.stats.table.rowCount() == len(info.readers) + 1
    assert "Pane-position bias" in admin.stats.tests.toPlainText()
    settle(qtbot)
    win.grab().save(str(shots / "statistics.png"))
    _close(qtbot, win)


def test_demo_window_flow(qtbot, demo, artifacts_dir: Path) -> None:
    """What `r2c-review demo` does after the window shows: build (reused here), list, welcome, read."""
    info, database, _tmp = demo
    from app.demo import DemoController

    win = _window(qtbot, database)
    controller = DemoController(win, database)
    qtbot.waitUntil(lambda: controller.welcome is not None and controller.welcome.isVisible(), timeout=60_000)
    assert controller.info.study == info.study
    qtbot.waitUntil(lambda: win.files.count() == len(list(info.images.glob("*.png"))), timeout=20_000)
    (artifacts_dir / "screenshots").mkdir(exist_ok=True)
    controller.welcome.grab().save(str(artifacts_dir / "screenshots" / "demo_welcome.png"))
    qtbot.mouseClick(controller.welcome.reader_button, Qt.MouseButton.LeftButton)
    page = win.page("reader")
    # MD I finished the study in the end-to-end test: the session opens on its last screen.
    qtbot.waitUntil(lambda: page.in_session() and (page.view.showing_case() or "answered" in page.view.blank.text()),
                    timeout=30_000)
    assert win.mode() == "reader"
    _close(qtbot, win)


def test_create_study_precompute_cancel_and_resume(qtbot, demo, tmp_path: Path) -> None:
    from app.study_service import StudySpec
    from tests.app_helpers import write_test_png

    _info, database, _tmp = demo
    cases = tmp_path / "cases"
    cases.mkdir()
    for i in range(12):  # two precompute chunks (8 + 4 cases): cancelling in the first leaves the second
        write_test_png(cases / f"{'covid' if i % 2 else 'control'}_{i:04d}.png", seed=40 + i, size=(192, 160))
    win = _window(qtbot, database)
    win.set_mode("admin")
    admin = win.page("admin")
    spec = StudySpec(name="Created in the GUI", source=cases, variants=[("r2c-q1", 2), ("histeq", None)],
                     readers=["Dr A", "Dr B"], design="all", seed=7, pane_labels="numbers")
    admin.create_study(spec, precompute=True)
    qtbot.waitUntil(admin.precompute_running, timeout=60_000)
    qtbot.waitUntil(lambda: admin.precompute_bar.value() > 0 or not admin.precompute_running(), timeout=60_000)
    admin.cancel_precompute()
    qtbot.waitUntil(lambda: not admin.precompute_running(), timeout=60_000)
    settle(qtbot)
    qtbot.waitUntil(lambda: admin.current_study() is not None and admin.current_study().name == spec.name,
                    timeout=30_000)
    study = admin.current_study()
    assert study.candidates == ["Original", "R2C-GAN (Q=1) ×2", "Histogram equalization"]
    assert not study.ready and 0 < study.precomputed[0] < study.precomputed[1]  # cancelled part-way
    assert not admin.read_button.isEnabled()
    admin.start_precompute()  # resumes: only what is missing is made
    qtbot.waitUntil(lambda: not admin.precompute_running(), timeout=120_000)
    settle(qtbot)
    qtbot.waitUntil(lambda: admin.current_study().ready, timeout=30_000)
    assert admin.read_button.isEnabled()

    # A bad definition is refused in one line, and nothing is created.
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nmissing.png,covid\n")
    admin.create_study(StudySpec(name="Bad", source=bad, variants=[("histeq", None)], readers=["X"],
                                 design="all"), precompute=False)
    settle(qtbot)
    qtbot.waitUntil(lambda: win.statusBar().currentMessage() != "" and "missing.png" in
                    win.statusBar().currentMessage(), timeout=10_000)
    assert "\n" not in win.statusBar().currentMessage()
    assert all(s.name != "Bad" for s in admin.studies())
    _close(qtbot, win)


def test_new_study_dialog_collects_a_spec(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.admin.new_study import NewStudyDialog

    monkeypatch.setenv("R2C_MODELS_DIR", str(make_stand_in_generators(tmp_path / "models")))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-bundled-resources")
    dialog = NewStudyDialog()
    qtbot.addWidget(dialog)
    assert dialog.problem() == "Give the study a name."
    dialog.name.setText("Pilot")
    dialog.source.setText(str(tmp_path))
    dialog.readers.setPlainText("MD I\n\nMD II\n")
    dialog.design.setCurrentIndex(dialog.design.findData("anchor"))
    dialog.anchor.setValue(3)
    dialog.qc.setValue(2)
    assert dialog.problem() is None
    spec = dialog.spec()
    assert spec.variants == [("r2c-q1", None)]  # only installed generators are offered checked
    assert (spec.readers, spec.design, spec.anchor_cases, spec.qc_repeats) == (["MD I", "MD II"], "anchor", 3, 2)
    disabled = [dialog.variants.item(i) for i in range(dialog.variants.count())
                if not dialog.variants.item(i).flags() & Qt.ItemFlag.ItemIsEnabled]
    assert len(disabled) == 4 and all("not installed" in item.text() for item in disabled)

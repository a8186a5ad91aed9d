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
from PySide6.QtGui import QAction  # noqa: E402
from PySide6.QtWidgets import QMenu, QWidget  # noqa: E402

from tests.app_helpers import click, make_stand_in_generators, open_main_window, settle, visible_texts  # noqa: E402

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
    return open_main_window(qtbot, database)


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


def _shown(widget: QWidget) -> bool:
    """On screen, or a menu that opens from something on screen (a menu bar, a parent menu)."""
    if widget.isVisible():
        return True
    return isinstance(widget, QMenu) and any(_shown(w) for w in widget.menuAction().associatedObjects()
                                             if isinstance(w, QWidget))


def _reachable(action: QAction) -> bool:
    """Enabled and reachable by click or shortcut: its owner or one of its widgets is shown."""
    owners = [w for w in [action.parent(), *action.associatedObjects()] if isinstance(w, QWidget)]
    return action.isEnabled() and any(_shown(w) for w in owners)


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
    assert win.windowTitle() == "Reader — R2C Review"
    assert not win.files_dock.isVisible() and not win.viewer.isVisible()
    # Nothing reachable from reader mode opens the statistics, the administration or the viewer: every such
    # action on a visible widget or menu is disabled (those on the hidden viewer page cannot fire at all).
    opening = re.compile(r"statist|admin|viewer|open|export|import|compare", re.IGNORECASE)
    actions = [a for a in win.findChildren(QAction) if opening.search(a.text().replace("&", ""))]
    mode_and_file = {"Viewer", "Study administration", "Open files…", "Open folder…", "Open recent"}
    assert mode_and_file <= {a.text().replace("&", "") for a in actions}
    assert not [a.text() for a in actions if a.text().replace("&", "") in mode_and_file and a.isEnabled()]
    assert not [a.text() for a in actions if _reachable(a)]
    for mode in ("admin", "viewer"):
        win.set_mode(mode)
        qtbot.keyClick(win, Qt.Key.Key_A if mode == "admin" else Qt.Key.Key_V,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    win.open_paths([tmp])
    assert win.mode() == "reader" and page.in_session() and "admin" not in win._pages
    assert win.end_session_action.isEnabled() and page.end_button.isVisible()
    _close(qtbot, win)


def test_reading_resumes_on_another_workstation(qtbot, demo, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The position lives in the study database: a second machine (own settings, own Store) resumes there."""
    info, database, _tmp = demo
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "machine-a"))
    win = _window(qtbot, database)
    page = _read_as(qtbot, win, info.study, "MD II")
    view = page.view
    start = page.position()
    for _ in range(2):
        qtbot.keyClick(view, Qt.Key.Key_B)
        qtbot.keyClick(view, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: page.votes_pending() == 0 and view.showing_case(), timeout=30_000)
    qtbot.keyClick(view, Qt.Key.Key_Left)  # back to the case just answered, then walk away
    qtbot.waitUntil(lambda: view.showing_case() and page.position() == start + 1, timeout=20_000)
    _close(qtbot, win)

    monkeypatch.setenv("R2C_SETTINGS_DIR", str(tmp_path / "machine-b"))
    from core.study import ReadingSession, open_store

    with open_store(database) as other:  # what any other machine's engine sees
        assert ReadingSession(other, info.study, "MD II").position == start + 1
    win = _window(qtbot, database)
    page = _read_as(qtbot, win, info.study, "MD II")
    assert page.position() == start + 1 and page.view.progress.text() == f"{start + 2} / {page.handle().total}"
    assert page.view.choice() == 1  # the answer given on machine A
    _close(qtbot, win)
    for ini in tmp_path.rglob("*.ini"):  # nothing about positions is kept per machine
        assert "position" not in ini.read_text().lower()


def test_service_lists_studies_through_the_public_api(demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """One list_studies call plus rendition_status per study; the app never loads a whole study to list it."""
    import core.study
    from app.study_service import StudyService

    info, database, _tmp = demo
    calls = []
    real_status = core.study.rendition_status

    def status(store, study):
        calls.append(study)
        return real_status(store, study)

    def no_load(*_args):
        raise AssertionError("the app loaded a whole study to list it")

    monkeypatch.setattr(core.study, "rendition_status", status)
    monkeypatch.setattr(core.study, "load_study", no_load)
    service = StudyService(database)
    try:
        studies = service.list_studies()
    finally:
        service.close()
    demo_study = next(s for s in studies if s.name == info.study)
    assert calls == [s.id for s in studies] and isinstance(demo_study.id, int)
    assert demo_study.ready and demo_study.candidates == info.candidates
    assert [r.name for r in demo_study.readers] == info.readers
    assert ("Confidence", "not asked") in demo_study.facts


def test_import_votes_from_a_copy_of_the_study(qtbot, demo, tmp_path: Path) -> None:
    """Site A reads a copy of the demo study and exports; site B imports that votes.csv in the GUI."""
    import threading

    from core.study import ReadingSession, create_demo_study, export_study, list_readers, list_studies, open_store

    info, _database, _tmp = demo
    site_a, site_b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    for site in (site_a, site_b):  # the same phantoms, weights and settings: the same study (fingerprint)
        assert create_demo_study(site, info.images.parent, precompute=False).name == info.study
    with open_store(site_a) as store:
        session = ReadingSession(store, info.study, "MD II")
        for i in range(3):
            session.vote("ABC"[i], index=i)
        session.vote("D", index=0)  # an amendment travels too
        votes_csv = export_study(store, info.study, tmp_path / "site-a").folder / "votes.csv"

    win = _window(qtbot, site_b)
    win.set_mode("admin")
    admin = win.page("admin")
    admin.select_study_named(info.study)
    qtbot.waitUntil(lambda: admin.current_study() is not None and admin.current_study().name == info.study,
                    timeout=30_000)
    assert admin.import_button.isEnabled()
    threads = []
    real_import = admin.service.import_votes

    def import_votes(study_id, path):
        threads.append(threading.current_thread())
        return real_import(study_id, path)

    admin.service.import_votes = import_votes
    admin.import_votes(votes_csv)
    settle(qtbot)
    qtbot.waitUntil(lambda: admin.import_note.text().startswith("Imported"), timeout=30_000)
    assert admin.import_note.text() == "Imported 4 votes from votes.csv"
    assert threads and threads[0] is not threading.main_thread()  # off the GUI thread
    qtbot.waitUntil(lambda: admin.readers.item(1, 1) is not None and admin.readers.item(1, 1).text().startswith("3 /"),
                    timeout=30_000)
    with open_store(site_b) as store:
        assert [(r.name, r.done) for r in list_readers(store, info.study)] == [("MD I", 0), ("MD II", 3)]

    admin.import_votes(votes_csv)  # the same file again: refused, one line, nothing merged
    settle(qtbot)
    qtbot.waitUntil(lambda: "already in the database" in admin.import_note.text(), timeout=30_000)
    message = admin.import_note.text()
    assert "\n" not in message and message.startswith(str(votes_csv)) and "nothing imported" in message
    assert admin.import_button.isEnabled()
    with open_store(site_b) as store:
        assert [s.votes for s in list_studies(store)] == [4]
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
    names = [r.name for r in stats.rows]  # the readers-and-cases-random row once there are votes
    assert names in ([*info.readers, "Overall"], [*info.readers, "Overall", "Overall, readers & cases random"])
    assert admin.stats.table.rowCount() == len(names)
    chance = f"(chance {100 / len(info.candidates):.1f}%)"
    assert all(h.endswith(chance) for h in stats.headers)
    assert admin.stats.table.horizontalHeaderItem(1).text().endswith(chance)
    if len(names) > len(info.readers) + 1:
        assert "chance" in admin.stats.tests.toPlainText() and "Holm" in admin.stats.tests.toPlainText()
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


def test_create_study_precompute_cancel_and_resume(qtbot, demo, tmp_path: Path, artifacts_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from app.study_service import NewStudyRequest
    from tests.app_helpers import write_test_png

    _info, database, _tmp = demo
    cases = tmp_path / "cases"
    cases.mkdir()
    for i in range(12):  # two precompute chunks (8 + 4 cases): cancelling in the first leaves the second
        write_test_png(cases / f"{'covid' if i % 2 else 'control'}_{i:04d}.png", seed=40 + i, size=(192, 160))
    win = _window(qtbot, database)
    win.set_mode("admin")
    admin = win.page("admin")
    spec = NewStudyRequest(name="Created in the GUI", source=cases, variants=[("r2c-q1", 2), ("histeq", None)],
                     readers=["Dr A", "Dr B"], design="all", seed=7, pane_labels="numbers", ask_confidence=True)
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
    assert ("Confidence", "rated 1–5 with every answer") in admin.current_study().facts

    # Read one case of it: the confidence scale is there and its rating lands in the vote and the statistics.
    win.open_reader(admin.current_study().id, "Dr A")
    page = win.page("reader")
    qtbot.waitUntil(page.view.showing_case, timeout=60_000)
    settle(qtbot)
    assert page.view.confidence_box.isVisible()
    qtbot.keyClick(page.view, Qt.Key.Key_2)
    qtbot.wait(50)  # let the layout follow the new prompt before the screenshot
    (artifacts_dir / "screenshots").mkdir(exist_ok=True)
    win.grab().save(str(artifacts_dir / "screenshots" / "reader_confidence.png"))
    qtbot.keyClick(page.view, Qt.Key.Key_Return)  # not rated yet: nothing happens
    assert page.position() == 0 and page.votes_pending() == 0
    qtbot.keyClick(page.view, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(page.view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.votes_pending() == 0 and page.position() == 1, timeout=30_000)
    from core.study import open_store
    from core.study.store import Vote

    with open_store(database) as store, store.read() as s:
        assert [(v.pane_index, v.confidence) for v in s.query(Vote)
                .filter(Vote.assignment.has(study_id=admin.current_study().id))] == [(1, 4)]
    monkeypatch.setattr("app.reader.page.confirm", lambda *_a: True)
    assert win.end_reading_session()
    win.set_mode("admin")
    admin.tabs.setCurrentWidget(admin.stats)
    qtbot.waitUntil(lambda: admin.stats.stats() is not None and "Mean confidence, Dr A: 4.00"
                    in admin.stats.tests.toPlainText(), timeout=30_000)
    admin.tabs.setCurrentIndex(0)

    # A bad definition is refused in one line, and nothing is created.
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nmissing.png,covid\n")
    admin.create_study(NewStudyRequest(name="Bad", source=bad, variants=[("histeq", None)], readers=["X"],
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
    assert spec.ask_confidence is False  # off unless asked for
    dialog.ask_confidence.setChecked(True)
    assert dialog.spec().ask_confidence is True
    disabled = [dialog.variants.item(i) for i in range(dialog.variants.count())
                if not dialog.variants.item(i).flags() & Qt.ItemFlag.ItemIsEnabled]
    from core.variants import VARIANTS

    assert len(disabled) == len(VARIANTS) - 1 and all("not installed" in item.text() for item in disabled)

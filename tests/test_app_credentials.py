"""Reader identity in the app: a protected study asks each reader's PIN, refuses a wrong one,
records the authenticated reader with every vote, and keeps administration, statistics and
ending a session behind the administrator's password. An open study says it is open."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.app_helpers import open_main_window, settle  # noqa: E402
from tests.study_helpers import make_study, write_cases  # noqa: E402

pytestmark = pytest.mark.gui
ADMIN = "admin-secret"


@pytest.fixture
def protected(study_env, store, monkeypatch: pytest.MonkeyPatch):
    """A two-reader study with PINs 1111/2222, its images prepared; the database path."""
    from core.study import credentials as cred
    from core.study.render import precompute

    monkeypatch.setattr(cred, "FAIL_DELAY_S", 0.0)
    cred._failures.clear()
    monkeypatch.setenv("R2C_SETTINGS_DIR", str(study_env.tmp / "settings"))
    write_cases(study_env.tmp / "cases", 4)
    make_study(store, study_env.tmp / "cases", name="Guarded", design="all", seed=2)
    make_study(store, study_env.tmp / "cases", name="Open", design="all", seed=2)
    cred.set_credentials(store, "Guarded", cred.StudyCredentials(ADMIN, {"MD I": "1111", "MD II": "2222"}))
    precompute(store, "Guarded")
    precompute(store, "Open")
    return str(study_env.tmp / "studies.db")


def _window(qtbot, database: str):
    return open_main_window(qtbot, database, size=(1200, 700))


def _secrets(monkeypatch: pytest.MonkeyPatch, *answers: str | None) -> list[str]:
    """Answer the PIN/password prompts in order; returns the prompts' titles."""
    asked: list[str] = []
    replies = iter(answers)

    def ask(_parent, title: str, _label: str) -> str | None:
        asked.append(title)
        return next(replies)

    monkeypatch.setattr("app.qt_util.ask_secret", ask)
    return asked


def _errors(win) -> list[str]:
    return [b.text() for b in win.findChildren(QMessageBox, "errorDialog") if b.isVisible()]


def test_wrong_pin_refused_right_pin_votes_as_that_reader(qtbot, protected, monkeypatch) -> None:
    from core.study.store import Reader, Vote, open_store

    win = _window(qtbot, protected)
    page = win.page("reader")
    asked = _secrets(monkeypatch, "2222", "1111")  # MD II's PIN first: refused
    win.open_reader_named("Guarded", "MD I")
    qtbot.waitUntil(lambda: bool(_errors(win)), timeout=20_000)
    assert "wrong PIN" in _errors(win)[0] and "2222" not in _errors(win)[0]
    assert not page.in_session() and asked == ["Reader PIN"]
    for box in win.findChildren(QMessageBox, "errorDialog"):
        box.close()
    qtbot.waitUntil(page.start_button.isEnabled, timeout=10_000)
    page.start()
    qtbot.waitUntil(page.view.showing_case, timeout=30_000)
    settle(qtbot)
    assert page.in_session() and win.reading_locked()
    qtbot.keyClick(page.view, Qt.Key.Key_A)
    qtbot.keyClick(page.view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.votes_pending() == 0, timeout=20_000)
    with open_store(protected) as store, store.read() as s:
        vote = s.scalars(select(Vote)).one()
        md1 = s.scalar(select(Reader.id).where(Reader.name == "MD I", Reader.study.has(name="Guarded")))
    assert (vote.reader_id, vote.auth) == (md1, "pin")

    # Ending the session needs the administrator password, not the reader's PIN.
    monkeypatch.setattr("app.reader.page.confirm", lambda *_a: True)
    _secrets(monkeypatch, "1111", None, ADMIN)
    assert not win.end_reading_session() and page.in_session()  # the reader's PIN is not the admin password
    assert not win.end_reading_session() and page.in_session()  # cancelled
    assert win.end_reading_session() and not page.in_session() and not win.reading_locked()
    win.close()
    win.service.close()


def test_administration_and_statistics_stay_locked_until_the_admin_password(qtbot, protected, monkeypatch) -> None:
    win = _window(qtbot, protected)
    win.set_mode("admin")
    admin = win.page("admin")
    qtbot.waitUntil(lambda: len(admin.studies()) == 2, timeout=20_000)
    admin.study_list.setCurrentRow(0)  # Guarded
    assert admin.current_study().name == "Guarded" and admin.current_study().protected
    assert not admin.stats.isEnabled() and not admin.import_button.isEnabled() and admin.unlock_button.isVisible()
    assert "(locked)" in admin.title.text() and not admin.facts_box.isVisible()
    with pytest.raises(Exception, match="protected"):
        win.service.statistics(admin.current_study().id)  # the service refuses too, not only the page
    _secrets(monkeypatch, "wrong-password")
    admin.unlock_dialog()
    qtbot.waitUntil(lambda: bool(_errors(win)), timeout=20_000)
    assert "wrong administrator password" in _errors(win)[0] and not admin.stats.isEnabled()
    _secrets(monkeypatch, ADMIN)
    admin.unlock_dialog()
    qtbot.waitUntil(lambda: admin.stats.isEnabled(), timeout=20_000)
    assert admin.facts_box.isVisible() and not admin.unlock_button.isVisible()
    assert win.service.statistics(admin.current_study().id).columns
    admin.study_list.setCurrentRow(1)  # Open: says so, nothing to unlock
    assert admin.stats.isEnabled() and "Open study" in admin.lock_note.text()
    win.close()
    win.service.close()


def test_open_study_warns_on_the_picker_and_passwords_can_be_set(qtbot, protected, monkeypatch) -> None:
    from core.study.credentials import authenticate_reader, is_protected
    from core.study.store import open_store

    win = _window(qtbot, protected)
    win.set_mode("reader")
    page = win.page("reader")
    qtbot.waitUntil(lambda: page.study_combo.count() == 2, timeout=20_000)
    page.study_combo.setCurrentIndex(page.study_combo.findText("Open"))
    assert "no passwords" in page.chooser_note.text()
    page.study_combo.setCurrentIndex(page.study_combo.findText("Guarded"))
    assert "PIN" in page.chooser_note.text() and "no passwords" not in page.chooser_note.text()

    win.set_mode("admin")
    admin = win.page("admin")
    qtbot.waitUntil(lambda: len(admin.studies()) == 2, timeout=20_000)
    admin.study_list.setCurrentRow(1)
    _secrets(monkeypatch, "new-admin-pw", "new-admin-pw")
    admin.passwords_dialog()
    qtbot.waitUntil(lambda: bool(win.findChildren(QMessageBox, "pinsDialog")), timeout=20_000)
    text = win.findChildren(QMessageBox, "pinsDialog")[0].text()
    pins = dict(line.split(": ") for line in text.split("\n\n", 1)[1].splitlines())
    assert set(pins) == {"MD I", "MD II"} and all(len(p) == 6 and p.isdigit() for p in pins.values())
    with open_store(protected) as store:
        assert is_protected(store, "Open")
        assert authenticate_reader(store, "Open", "MD II", pins["MD II"]).method == "pin"
    win.close()
    win.service.close()


def test_new_study_dialog_path_protects_the_study_and_shows_generated_pins(qtbot, protected, monkeypatch) -> None:
    from app.study_service import NewStudyRequest
    from core.study.credentials import authenticate_admin, authenticate_reader, is_protected
    from core.study.store import open_store

    cases = Path(protected).parent / "cases"
    win = _window(qtbot, protected)
    win.set_mode("admin")
    admin = win.page("admin")
    _secrets(monkeypatch, "short")  # too short: refused before anything is made
    from app.admin.credentials import ask_new_credentials

    assert ask_new_credentials(admin, ["Dr A"]) is None and "at least 8" in _errors(win)[0]
    _secrets(monkeypatch, "the-admin-pw", "the-admin-pw")
    admin_password, pins = ask_new_credentials(admin, ["Dr A", "Dr B"])
    spec = NewStudyRequest(name="Made here", source=cases, variants=[("histeq", None)], readers=["Dr A", "Dr B"],
                           design="all", admin_password=admin_password, reader_pins=pins)
    admin.create_study(spec, precompute=False)
    qtbot.waitUntil(lambda: bool(win.findChildren(QMessageBox, "pinsDialog")), timeout=30_000)
    shown = win.findChildren(QMessageBox, "pinsDialog")[0].text()
    assert all(f"{name}: {pin}" in shown for name, pin in pins.items()) and "the-admin-pw" not in shown
    qtbot.waitUntil(lambda: admin.current_study() is not None and admin.current_study().name == "Made here",
                    timeout=30_000)
    assert admin.current_study().protected and admin.stats.isEnabled()  # its creator is its administrator
    with open_store(protected) as store:
        assert is_protected(store, "Made here")
        authenticate_admin(store, "Made here", "the-admin-pw")
        assert authenticate_reader(store, "Made here", "Dr B", pins["Dr B"]).method == "pin"
    win.close()
    win.service.close()

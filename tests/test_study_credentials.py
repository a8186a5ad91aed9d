"""Reader PINs and the administrator password: scrypt hashes only, refusals, attempt limits, attributed votes."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from core.errors import StudyDefinitionError, StudyStateError
from core.study import credentials as cred
from core.study.credentials import (
    AuthenticationError,
    StudyCredentials,
    authenticate_admin,
    authenticate_reader,
    hash_secret,
    is_protected,
    set_credentials,
    set_reader_pin,
    verify_secret,
)
from core.study.export import export_study
from core.study.manage import list_studies
from core.study.reading import ReadingSession
from core.study.render import precompute
from core.study.store import Reader, Study, Vote
from tests.study_helpers import make_study, write_cases

pytestmark = pytest.mark.usefixtures("study_env")
CREDS = StudyCredentials("admin-secret", {"MD I": "1111", "MD II": "2222"})


@pytest.fixture(autouse=True)
def _fast_failures(monkeypatch):
    monkeypatch.setattr(cred, "FAIL_DELAY_S", 0.0)
    cred._failures.clear()


@pytest.fixture
def study(store, study_env):
    write_cases(study_env.tmp / "cases", 4)
    info = make_study(store, study_env.tmp / "cases", name="Locked", design="all", seed=1)
    precompute(store, "Locked")
    return info


def test_hashes_are_salted_scrypt_with_parameters_and_verify_in_constant_time():
    a, b = hash_secret("1234"), hash_secret("1234")
    assert a != b and a.startswith(f"scrypt${cred.SCRYPT_N}${cred.SCRYPT_R}${cred.SCRYPT_P}$") and "1234" not in a
    assert verify_secret("1234", a) and verify_secret("1234", b)
    assert not verify_secret("1235", a) and not verify_secret("", a) and not verify_secret("1234", None)
    assert not verify_secret("1234", "scrypt$x$y") and not verify_secret("1234", "md5$1$1$1$AA==$AA==")


def test_an_open_study_lets_anyone_read_and_administer_until_passwords_are_set(store, study):
    assert not is_protected(store, "Locked") and not list_studies(store)[0].protected
    auth = authenticate_reader(store, "Locked", "MD I", None)
    assert auth.method == "open"
    authenticate_admin(store, "Locked", None)
    set_credentials(store, "Locked", CREDS)  # the first administrator claims it
    assert is_protected(store, "Locked") and list_studies(store)[0].protected
    with pytest.raises(AuthenticationError, match="wrong administrator password"):
        set_credentials(store, "Locked", CREDS)  # now changing them needs the current password
    set_credentials(store, "Locked", StudyCredentials("admin-secret2", CREDS.reader_pins), "admin-secret")
    with store.read() as s:
        stored = [s.scalar(select(Study.admin_hash)), *s.scalars(select(Reader.pin_hash))]
    assert all(h.startswith("scrypt$") for h in stored)
    assert not any(secret in h for h in stored for secret in ("admin-secret", "1111", "2222"))


def test_wrong_pin_refused_right_pin_attributed_to_the_reader(store, study, caplog):
    set_credentials(store, "Locked", CREDS)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError, match="wrong PIN") as err:
        authenticate_reader(store, "Locked", "MD I", "2222")  # another reader's PIN
    assert "2222" not in str(err.value) and "2222" not in caplog.text
    with pytest.raises(AuthenticationError):
        authenticate_reader(store, "Locked", "MD I", None)
    auth = authenticate_reader(store, "Locked", "MD I", "1111")
    assert auth.method == "pin"
    with pytest.raises(StudyStateError, match="not MD II's"):
        ReadingSession(store, "Locked", "MD II", auth=auth)
    session = ReadingSession(store, "Locked", "MD I", auth=auth)
    session.vote("A")
    with store.read() as s:
        vote = s.scalars(select(Vote)).one()
        reader_id = s.scalar(select(Reader.id).where(Reader.name == "MD I"))
    assert (vote.reader_id, vote.auth) == (reader_id, "pin") == (auth.reader_id, "pin")


def test_attempts_are_limited_then_locked_out(store, study, monkeypatch):
    set_credentials(store, "Locked", CREDS)
    clock = [1000.0]
    monkeypatch.setattr(cred.time, "monotonic", lambda: clock[0])
    for _ in range(cred.MAX_FAILURES):
        with pytest.raises(AuthenticationError, match="wrong PIN"):
            authenticate_reader(store, "Locked", "MD II", "0000")
    with pytest.raises(AuthenticationError, match="too many wrong attempts"):
        authenticate_reader(store, "Locked", "MD II", "2222")  # even the right one, while locked
    assert authenticate_reader(store, "Locked", "MD I", "1111").method == "pin"  # other accounts unaffected
    clock[0] += cred.LOCKOUT_S + 1
    assert authenticate_reader(store, "Locked", "MD II", "2222").method == "pin"


def test_admin_password_gates_and_pin_reset(store, study):
    set_credentials(store, "Locked", CREDS)
    with pytest.raises(AuthenticationError, match="wrong administrator password"):
        authenticate_admin(store, "Locked", "1111")
    authenticate_admin(store, "Locked", "admin-secret")
    with pytest.raises(AuthenticationError):
        set_reader_pin(store, "Locked", "MD I", "9999", "nope-nope")
    set_reader_pin(store, "Locked", "MD I", "9999", "admin-secret")
    assert authenticate_reader(store, "Locked", "MD I", "9999").method == "pin"


@pytest.mark.parametrize(("creds", "message"), [
    (StudyCredentials("short", {"MD I": "1111", "MD II": "2222"}), "at least 8"),
    (StudyCredentials("admin-secret", {"MD I": "1111"}), "missing for MD II"),
    (StudyCredentials("admin-secret", {"MD I": "1111", "MD II": "2222", "MD X": "3333"}), "no such reader: MD X"),
    (StudyCredentials("admin-secret", {"MD I": "11", "MD II": "2222"}), "PIN of MD I"),
])
def test_bad_credentials_are_refused_in_one_line(store, study, creds, message):
    with pytest.raises(StudyDefinitionError, match=message) as err:
        set_credentials(store, "Locked", creds)
    assert "\n" not in str(err.value) and "11\"" not in str(err.value)
    assert not is_protected(store, "Locked")


def test_create_with_credentials_is_protected_and_exports_carry_no_hashes(store, study_env, tmp_path):
    write_cases(study_env.tmp / "c2", 4)
    from core.study.definition import StudySpec, default_reader_names, parse_candidates, read_cases
    from core.study.manage import create_study

    spec = StudySpec(name="P", cases=read_cases(study_env.tmp / "c2"), candidates=parse_candidates("clahe", {}),
                     readers=default_reader_names(2), design="all")
    create_study(store, spec, credentials=CREDS)
    assert is_protected(store, "P")
    precompute(store, "P")
    session = ReadingSession(store, "P", "MD II", auth=authenticate_reader(store, "P", "MD II", "2222"))
    session.vote(0)
    files = export_study(store, "P", tmp_path / "out").files
    for path in files:
        if path.suffix in (".csv", ".json", ".md", ".txt"):
            assert "scrypt$" not in path.read_text()


def test_cli_create_with_credentials_then_stats_need_the_admin_password(study_env, capsys, monkeypatch):
    import json

    from core.cli.main import main
    from core.study.store import open_store

    tmp = study_env.tmp
    write_cases(tmp / "cases", 4)
    db = str(tmp / "cli.db")
    secrets = tmp / "secrets.json"
    secrets.write_text(json.dumps({"admin": "admin-secret", "readers": {"Ann": "1111", "Bob": "2222"}}))
    args = ["--cases", str(tmp / "cases"), "--candidates", "original,clahe", "--readers", "Ann,Bob",
            "--design", "all", "--database", db]
    assert main(["study", "create", "Cli", *args, "--credentials", str(secrets)]) == 0
    assert main(["study", "create", "Open", *args]) == 0
    err = capsys.readouterr().err
    assert "no passwords: anyone may read as any reader" in err and "admin-secret" not in err
    with open_store(db) as store:
        assert is_protected(store, "Cli") and not is_protected(store, "Open")
    monkeypatch.delenv("R2C_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["study", "stats", "Cli", "--database", db]) != 0
    assert "R2C_ADMIN_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv("R2C_ADMIN_PASSWORD", "wrong-one!")
    assert main(["study", "stats", "Cli", "--database", db]) != 0
    err = capsys.readouterr().err
    assert "wrong administrator password" in err and "Traceback" not in err
    monkeypatch.setenv("R2C_ADMIN_PASSWORD", "admin-secret")
    assert main(["study", "stats", "Cli", "--database", db]) == 0
    secrets.write_text(json.dumps({"admin": "new-admin-secret", "readers": {"Ann": "3333", "Bob": "4444"}}))
    assert main(["study", "passwords", "Cli", "--credentials", str(secrets), "--database", db]) == 0
    with open_store(db) as store:
        assert authenticate_reader(store, "Cli", "Ann", "3333").method == "pin"
    secrets.write_text("{not json")
    assert main(["study", "passwords", "Open", "--credentials", str(secrets), "--database", db]) != 0
    assert "not a JSON file" in capsys.readouterr().err

"""Reader PINs and the study administrator's password: scrypt hashes, checks, attempt limits.

Who may do what is a property of the study, so both secrets live in its database
(``readers.pin_hash``, ``studies.admin_hash``; migration 0004) and follow it to every
workstation of a shared server study. Only a salted ``hashlib.scrypt`` hash is stored, with
its parameters (``scrypt$n$r$p$salt$hash``), so they can be raised later without breaking
old hashes; a secret is compared in constant time and never logged or put in a message.

A study is *protected* once it has an administrator password; then every reader has a PIN,
reading needs the reader's PIN, and administration, statistics and ending a reading session
need the administrator's password. A study without one (made before 0004, by the engine API,
``study create`` without ``--credentials``, or the demo) is *open*: anyone may read as any
reader, and the app says so on the reader picker until the administrator sets passwords
(``r2c-review study passwords``, or the app's administration page).

Wrong secrets cost ``FAIL_DELAY_S`` each, and after ``MAX_FAILURES`` in a row an account is
locked for ``LOCKOUT_S`` (per process: it slows guessing at the workstation, which is where a
PIN can be guessed; the database is the administrator's to protect).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from core.errors import StudyDefinitionError, StudyStateError
from core.study.store import Reader, Store, Study

SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES = 2 ** 14, 8, 1, 32  # ~16 MiB, tens of ms: fine for a login
MIN_PIN, MIN_ADMIN = 4, 8
MAX_SECRET = 200
FAIL_DELAY_S = 1.0
MAX_FAILURES = 5
LOCKOUT_S = 60.0


class AuthenticationError(StudyStateError):
    """A wrong or missing PIN/password, or an account locked after too many wrong ones."""


@dataclass(frozen=True)
class ReaderAuth:
    """Proof that a reader was authenticated (or that the study is open); votes record it."""

    study_id: int
    reader_id: int
    method: str  # "pin" (the reader's PIN was checked) or "open" (a study without passwords)


# --------------------------------------------------------------------------- hashing


def hash_secret(secret: str) -> str:
    """A salted scrypt hash with its parameters, for storage."""
    salt = os.urandom(16)
    key = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether ``secret`` matches a stored hash (constant-time compare; a malformed hash never matches)."""
    if not stored or not isinstance(secret, str):
        return False
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt, validate=True), n=int(n), r=int(r),
                             p=int(p), dklen=len(expected), maxmem=2 ** 27)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_secret(secret: object, what: str, minimum: int) -> str:
    """The secret if acceptable, else a one-line error (that never repeats it)."""
    if not isinstance(secret, str) or len(secret) < minimum:
        raise StudyDefinitionError(what, f"must be at least {minimum} characters")
    if len(secret) > MAX_SECRET or secret != secret.strip() or any(ord(ch) < 32 for ch in secret):
        raise StudyDefinitionError(what, f"must be at most {MAX_SECRET} printable characters without "
                                         "leading or trailing spaces")
    return secret


@dataclass(frozen=True)
class StudyCredentials:
    """What an administrator sets: their password and one PIN per reader (checked, not yet hashed)."""

    admin_password: str
    reader_pins: dict[str, str]

    def validate(self, readers: list[str] | tuple[str, ...]) -> None:
        check_secret(self.admin_password, "the administrator password", MIN_ADMIN)
        missing = [r for r in readers if r not in self.reader_pins]
        unknown = [r for r in self.reader_pins if r not in readers]
        if missing or unknown:
            raise StudyDefinitionError("reader PINs", (f"missing for {', '.join(missing)}" if missing else "")
                                       + ("; " if missing and unknown else "")
                                       + (f"no such reader: {', '.join(unknown)}" if unknown else ""))
        for name, pin in self.reader_pins.items():
            check_secret(pin, f"the PIN of {name}", MIN_PIN)


# --------------------------------------------------------------------------- attempt limits

_failures: dict[tuple[str, ...], tuple[int, float]] = {}  # account -> (failures in a row, last failure)
_failures_lock = threading.Lock()


def _account(store: Store, *parts: object) -> tuple[str, ...]:
    return (store.url, *(str(p) for p in parts))


def _check_not_locked(account: tuple[str, ...], what: str) -> None:
    with _failures_lock:
        count, last = _failures.get(account, (0, 0.0))
    left = LOCKOUT_S - (time.monotonic() - last)
    if count >= MAX_FAILURES and left > 0:
        raise AuthenticationError(what, f"too many wrong attempts; try again in {int(left) + 1} s")


def _failed(account: tuple[str, ...], what: str, message: str) -> AuthenticationError:
    with _failures_lock:
        count, last = _failures.get(account, (0, 0.0))
        if count >= MAX_FAILURES and time.monotonic() - last >= LOCKOUT_S:
            count = 0  # a lockout served starts a fresh count
        _failures[account] = (count + 1, time.monotonic())
    time.sleep(FAIL_DELAY_S)
    return AuthenticationError(what, message)


def _succeeded(account: tuple[str, ...]) -> None:
    with _failures_lock:
        _failures.pop(account, None)


# --------------------------------------------------------------------------- the study's accounts


def _study(session, study: str | int) -> Study:
    column = Study.id if isinstance(study, int) else Study.name
    row = session.scalars(select(Study).where(column == study)).first()
    if row is None:
        raise StudyStateError(str(study), "no such study")
    return row


def is_protected(store: Store, study: str | int) -> bool:
    """The study has an administrator password (and so reader PINs): see the module docstring."""
    with store.read() as s:
        return _study(s, study).admin_hash is not None


def authenticate_admin(store: Store, study: str | int, password: str | None) -> None:
    """Pass for an open study or the right administrator password; else ``AuthenticationError``."""
    with store.read() as s:
        row = _study(s, study)
        name, stored = row.name, row.admin_hash
    if stored is None:
        return
    account = _account(store, name, "\0admin")
    _check_not_locked(account, name)
    if not verify_secret(password or "", stored):
        raise _failed(account, name, "wrong administrator password")
    _succeeded(account)


def authenticate_reader(store: Store, study: str | int, reader: str, pin: str | None) -> ReaderAuth:
    """The reader's proof of identity: their PIN checked (protected study) or an open study."""
    with store.read() as s:
        row = _study(s, study)
        reader_row = s.scalars(select(Reader).where(Reader.study_id == row.id, Reader.name == reader)).first()
        if reader_row is None:
            raise StudyStateError(row.name, f"no reader {reader!r} in this study")
        study_id, name, protected, stored = row.id, row.name, row.admin_hash is not None, reader_row.pin_hash
        reader_id = reader_row.id
    if not protected:
        return ReaderAuth(study_id, reader_id, "open")
    account = _account(store, name, reader)
    _check_not_locked(account, name)
    if stored is None:  # protected studies give every reader a PIN; a gap is the administrator's to fix
        raise AuthenticationError(name, f"{reader} has no PIN yet; ask the study administrator to set one")
    if not verify_secret(pin or "", stored):
        raise _failed(account, name, "wrong PIN")
    _succeeded(account)
    return ReaderAuth(study_id, reader_id, "pin")


def set_credentials(store: Store, study: str | int, credentials: StudyCredentials,
                    current_admin_password: str | None = None) -> None:
    """Set (or replace) the administrator password and every reader's PIN, in one transaction.

    An open study takes them from whoever runs this (the study's first administrator); a
    protected one needs its current administrator password."""
    with store.read() as s:
        readers = [r.name for r in _study(s, study).readers]
    credentials.validate(readers)
    authenticate_admin(store, study, current_admin_password)
    hashes = {name: hash_secret(pin) for name, pin in credentials.reader_pins.items()}
    admin = hash_secret(credentials.admin_password)
    with store.write() as s:
        row = _study(s, study)
        row.admin_hash = admin
        for reader in row.readers:
            reader.pin_hash = hashes[reader.name]


def set_reader_pin(store: Store, study: str | int, reader: str, pin: str, admin_password: str | None) -> None:
    """Give one reader a new PIN (a forgotten one); needs the administrator password."""
    check_secret(pin, f"the PIN of {reader}", MIN_PIN)
    authenticate_admin(store, study, admin_password)
    if not is_protected(store, study):
        raise StudyStateError(str(study), "set the administrator password first (with every reader's PIN)")
    with store.write() as s:
        row = _study(s, study)
        match = [r for r in row.readers if r.name == reader]
        if not match:
            raise StudyStateError(row.name, f"no reader {reader!r} in this study")
        match[0].pin_hash = hash_secret(pin)


def read_credentials_file(path: str | os.PathLike) -> StudyCredentials:
    """``{"admin": PASSWORD, "readers": {NAME: PIN, ...}}`` from a JSON file (``study create/passwords``)."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise StudyDefinitionError(path, f"cannot read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise StudyDefinitionError(path, "not a JSON file") from None
    readers = data.get("readers") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("admin"), str) or not isinstance(readers, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in readers.items()):
        raise StudyDefinitionError(path, 'expected {"admin": "PASSWORD", "readers": {"READER NAME": "PIN", ...}}')
    return StudyCredentials(data["admin"], dict(readers))

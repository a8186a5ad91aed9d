"""Choosing a study's administrator password and handing out reader PINs (GUI side).

PINs are generated (6 random digits from ``secrets``) rather than typed, so none is weak or
shared, and shown once, to be handed to each reader; the study keeps only their hashes
(``core.study.credentials``). Losing them means setting new ones (Set passwords…).
"""

from __future__ import annotations

import secrets

from PySide6.QtWidgets import QMessageBox, QWidget

from app import qt_util
from app.qt_util import show_error

PIN_DIGITS = 6
MIN_ADMIN = 8  # as core.study.credentials.MIN_ADMIN (not imported: app pages stay off the engine)


def new_pins(readers: list[str]) -> dict[str, str]:
    return {name: f"{secrets.randbelow(10 ** PIN_DIGITS):0{PIN_DIGITS}d}" for name in readers}


def ask_new_credentials(parent: QWidget | None, readers: list[str]) -> tuple[str, dict[str, str]] | None:
    """A new administrator password (typed twice) and fresh PINs for ``readers``; None if cancelled."""
    first = qt_util.ask_secret(parent, "Administrator password",
                               f"New administrator password (at least {MIN_ADMIN} characters):")
    if first is None:
        return None
    if len(first) < MIN_ADMIN:
        show_error(parent, f"The administrator password must be at least {MIN_ADMIN} characters.")
        return None
    again = qt_util.ask_secret(parent, "Administrator password", "The same password again:")
    if again != first:
        if again is not None:
            show_error(parent, "The two passwords differ; nothing was changed.")
        return None
    return first, new_pins(readers)


def show_pins(parent: QWidget | None, study: str, pins: dict[str, str]) -> QMessageBox:
    """The readers' PINs, once: they are not stored anywhere but as hashes."""
    lines = "\n".join(f"{name}: {pin}" for name, pin in pins.items())
    box = QMessageBox(QMessageBox.Icon.Information, "Reader PINs",
                      f"PINs for {study} — give each reader theirs. They are shown only now:\n\n{lines}",
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("pinsDialog")
    box.open()
    return box

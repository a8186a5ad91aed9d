"""Persistent user settings (recent items, last study and reader, window and viewer layout,
the compare passes) in QSettings.

``R2C_SETTINGS_DIR`` points the settings at another folder (tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10


def settings() -> QSettings:
    folder = os.environ.get("R2C_SETTINGS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "r2c-review.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "R2C Review", "r2c-review")


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]  # type: ignore[union-attr]


def recent_items() -> list[str]:
    return _list(settings().value("recent"))


def add_recent(path: str | Path) -> list[str]:
    item = str(Path(path).resolve())
    items = [item] + [p for p in recent_items() if p != item]
    s = settings()
    s.setValue("recent", items[:MAX_RECENT])
    s.sync()
    return items[:MAX_RECENT]


def clear_recent() -> None:
    s = settings()
    s.remove("recent")
    s.sync()


def value(key: str, default: str = "") -> str:
    v = settings().value(key)
    return str(v) if v is not None else default


def set_value(key: str, val: str) -> None:
    s = settings()
    s.setValue(key, val)
    s.sync()


def value_bytes(key: str) -> QByteArray | None:
    """A Qt state blob (window geometry, splitter sizes) stored as base64 text; None if absent or unreadable."""
    text = value(key)
    if not text:
        return None
    data = QByteArray.fromBase64(text.encode("ascii", "ignore"))
    return data if not data.isEmpty() else None


def set_bytes(key: str, data: QByteArray) -> None:
    set_value(key, bytes(data.toBase64().data()).decode("ascii"))

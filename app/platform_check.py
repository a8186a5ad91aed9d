"""Can Qt open a window here? Checked before QApplication exists, without importing Qt.

When Qt's xcb platform plugin cannot load (a fresh Debian lacks libxcb-cursor0 and friends),
Qt prints a page of advice and aborts the process. This module finds the missing shared
libraries first (``ldd`` on the plugin) so that the app can print one line naming them and
the Debian packages that provide them, and exit cleanly instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: The Debian packages Qt's xcb plugin needs that a minimal system often lacks (README's apt line).
KNOWN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")
_SONAME = re.compile(r"^(lib.+)\.so\.(\d+)$")


def missing_from_ldd(output: str) -> list[str]:
    """Library names ``ldd`` reported as "not found", in order and without repeats."""
    seen: list[str] = []
    for line in output.splitlines():
        m = _NOT_FOUND.match(line)
        if m and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def debian_package(soname: str) -> str:
    """The Debian package that usually ships ``soname`` (libfoo.so.4 -> libfoo4, libfoo-1.so.0 -> libfoo-1-0)."""
    if soname in KNOWN_PACKAGES:
        return KNOWN_PACKAGES[soname]
    m = _SONAME.match(soname)
    if not m:
        return soname
    name, version = m.group(1).lower(), m.group(2)
    return f"{name}-{version}" if name[-1].isdigit() else f"{name}{version}"


def uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will pick the xcb plugin: asked for explicitly, or the Linux default outside Wayland."""
    platform = env.get("QT_QPA_PLATFORM", "").strip().lower()
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    return sys.platform.startswith("linux") and env.get("XDG_SESSION_TYPE", "") != "wayland"


def xcb_plugin() -> Path | None:
    """PySide6's libqxcb.so, located without importing Qt (which would load the libraries)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def platform_problem(env: Mapping[str, str] | None = None, plugin: Path | None = None,
                     ldd: str | None = None) -> str | None:
    """One line saying why no window can open (missing libraries, no display), or None when it can."""
    env = os.environ if env is None else env
    if not uses_xcb(env):
        return None
    plugin = plugin or xcb_plugin()
    ldd = ldd or shutil.which("ldd")
    if plugin is not None and ldd is not None:
        try:
            out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        missing = missing_from_ldd(out)
        if missing:
            packages = " ".join(dict.fromkeys(debian_package(m) for m in missing))
            return (f"cannot open a window: Qt's xcb platform plugin needs {', '.join(missing)}, which are not "
                    f"installed (Debian/Ubuntu: sudo apt-get install {packages})")
    if not env.get("DISPLAY"):
        return ("cannot open a window: no X display (DISPLAY is not set); run it on a desktop, "
                "under xvfb-run, or with QT_QPA_PLATFORM=offscreen")
    return None

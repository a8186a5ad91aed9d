"""Loading X-rays in a child process, so that a decoder that aborts takes one file down, not the app.

The loader checks what a file declares before decoding it (:mod:`core.imaging.declared`),
but native decoders (GDCM, OpenJPEG, libpng) can still abort or hang on input nobody
foresaw. The callers that must survive such a file (the GUI, ``convert``, study creation
and precompute) load through :func:`load_xray_isolated`: a long-lived child process with an
address-space limit decodes, and a time limit stops it. If it dies or overruns, that file
gets an :class:`~core.errors.ImageLoadError` saying so, a fresh child is started, and the
next file goes on.

``R2C_ISOLATE_DECODERS=0`` loads in-process instead (debugging).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from core.errors import ImageLoadError
from core.imaging.xray import XRay

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_BYTES = 8 << 30  # address space, not resident memory: libraries reserve more than they use


def _limit_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource
    except ImportError:  # Windows
        return
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):  # not lowerable here (e.g. macOS): run unlimited
        log.debug("cannot limit the decoder's address space", exc_info=True)


def _serve(conn: Connection, memory_bytes: int | None, load: Callable[[Path], XRay] | None) -> None:
    """Child process: load each path received, send back the XRay or the error."""
    _limit_memory(memory_bytes)
    if load is None:
        from core.imaging.load import load_xray as load

    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        path, megapixels = request
        if megapixels is None:
            os.environ.pop("R2C_MAX_MEGAPIXELS", None)
        else:
            os.environ["R2C_MAX_MEGAPIXELS"] = megapixels
        try:
            reply: tuple = ("ok", load(path))
        except ImageLoadError as exc:
            reply = ("error", exc.source, exc.reason)
        except MemoryError:
            reply = ("error", str(path), "image is too large to load in memory")
        except Exception:  # load_xray converts everything; belt and braces
            reply = ("error", str(path), "cannot be read: the file is corrupt or uses a feature this app "
                                         "does not support")
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("error", str(path), "image is too large to load in memory"))


def _context() -> mp.context.BaseContext:
    """forkserver where it exists (no fork of a threaded GUI process), else spawn."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["core.imaging.load"])
        return ctx
    return mp.get_context("spawn")


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the image decoder crashed on this file ({name}); the file is corrupt or not supported"
    return "the image decoder stopped on this file (out of memory or crashed); the file is corrupt or too large"


class IsolatedLoader:
    """One child process that loads X-rays under memory and time limits; thread-safe (one load at a time)."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, memory_bytes: int | None = DEFAULT_MEMORY_BYTES,
                 load: Callable[[Path], XRay] | None = None) -> None:
        """``load`` (a module-level function, default ``load_xray``) is what the child runs per file."""
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes
        self._load = load
        self._lock = threading.Lock()
        self._process: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._stop()
        ctx = _context()
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child, self.memory_bytes, self._load), daemon=True,
                              name="r2c-image-decoder")
        process.start()
        child.close()
        self._process, self._conn = process, parent
        return parent

    def _stop(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)

    def load(self, path: str | Path) -> XRay:
        """The X-ray at ``path``, or an ImageLoadError (also when the decoder crashes or overruns)."""
        path = Path(path)
        with self._lock:
            try:
                conn = self._start()
                conn.send((path, os.environ.get("R2C_MAX_MEGAPIXELS")))
                if not conn.poll(self.timeout_s):
                    self._stop()
                    raise ImageLoadError(path, f"decoding took longer than {self.timeout_s:g} s and was stopped "
                                               "(the file is corrupt or too large)")
                reply = conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                exitcode = self._process.exitcode if self._process is not None else None
                if self._process is not None:
                    self._process.join(5)
                    exitcode = self._process.exitcode
                self._stop()
                raise ImageLoadError(path, _death_reason(exitcode)) from None
        if reply[0] == "error":
            raise ImageLoadError(reply[1], reply[2])
        xray: XRay = reply[1]
        for array in (xray.values, xray.display):
            array.setflags(write=False)
        return xray

    def close(self) -> None:
        with self._lock:
            self._stop()


_shared: IsolatedLoader | None = None
_shared_lock = threading.Lock()


def isolation_enabled() -> bool:
    return os.environ.get("R2C_ISOLATE_DECODERS", "1").strip().lower() not in ("0", "no", "false", "off")


def load_xray_isolated(path: str | Path) -> XRay:
    """``load_xray`` in the shared child process (in-process when isolation is turned off)."""
    global _shared
    if not isolation_enabled() or mp.current_process().name == "r2c-image-decoder":
        from core.imaging.load import load_xray

        return load_xray(path)
    with _shared_lock:
        if _shared is None:
            _shared = IsolatedLoader()
        loader = _shared
    return loader.load(path)

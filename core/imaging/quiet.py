"""Keep decoder chatter off the user's terminal while an image is read.

Native decoders (OpenJPEG, libpng, libjpeg, GDCM) print straight to file descriptor 2
("Stream too short, expected SOT"), and pydicom both warns and logs for every odd value.
The reason for a failure reaches the user as an ImageLoadError instead, so the noise is
dropped. Descriptor 2 and the warning filters are process-wide, so muting them is
reference-counted: the first load to start mutes, the last to finish restores, and loads in
worker threads nest correctly (``warnings.catch_warnings`` per load would not: two threads
restoring in the wrong order leave warnings muted for good). While any load runs, other
threads' writes to descriptor 2 are dropped too. Log records are filtered per context, so
other threads keep theirs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextvars import ContextVar

_loading: ContextVar[bool] = ContextVar("r2c_imaging_loading", default=False)
_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_saved_warnings: warnings.catch_warnings | None = None


class _DropWhileLoading(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _loading.get()


_FILTER = _DropWhileLoading()
for _name in ("pydicom", "gdcm"):
    logging.getLogger(_name).addFilter(_FILTER)


def _stderr_fd() -> int | None:
    """Descriptor 2, where native libraries write; None when the process has none (GUI apps)."""
    try:
        os.fstat(2)
    except OSError:
        return None
    return 2


def _mute() -> None:
    global _depth, _saved_fd, _saved_warnings
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        _saved_warnings = warnings.catch_warnings()
        _saved_warnings.__enter__()
        warnings.simplefilter("ignore")
        fd = _stderr_fd()
        if fd is None:
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            _saved_fd = os.dup(fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
        except OSError:
            _saved_fd = None


def _unmute() -> None:
    global _depth, _saved_fd, _saved_warnings
    with _lock:
        _depth -= 1
        if _depth > 0:
            return
        if _saved_warnings is not None:
            _saved_warnings.__exit__(None, None, None)
            _saved_warnings = None
        if _saved_fd is None:
            return
        fd = _stderr_fd()
        try:
            if fd is not None:
                os.dup2(_saved_fd, fd)
        finally:
            os.close(_saved_fd)
            _saved_fd = None


@contextlib.contextmanager
def quiet_decoders() -> Iterator[None]:
    """Silence native stderr, pydicom warnings and pydicom/GDCM log records inside the block."""
    token = _loading.set(True)
    _mute()
    try:
        yield
    finally:
        _unmute()
        _loading.reset(token)

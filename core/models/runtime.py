"""Process-wide CPU runtime settings for the generators.

glibc serves large blocks (here every feature map: a 128 x 128 x 128 float map is 8 MiB) with
fresh ``mmap`` pages and returns them on ``free``, so each forward pass page-faults its whole
working set again: measured 8,000-73,000 minor faults per 256x256 pass, tens of ms, and
more with 2 threads. How much depends on glibc's adaptive threshold, hence on what ran
before (the first model timed in a process was up to 1.7x slower than an identical one timed
later). ``keep_freed_memory`` tells glibc to serve all blocks from its heap and keep freed
memory for reuse (what PyTorch's CPU performance guide gets from jemalloc or tcmalloc): after
the first pass, a pass makes no page faults. The cost is that the process keeps its peak
heap. Applied once when ``core.models`` is imported; ``R2C_DEFAULT_MALLOC=1`` skips it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep and reuse freed memory (Linux/glibc only); True when applied."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("R2C_DEFAULT_MALLOC") == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    return _applied

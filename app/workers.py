"""Background work off the GUI thread: a function runs in a thread pool, results come back as signals.

Every slow thing (loading images, thumbnails, inference, precompute, study I/O) goes
through :func:`submit`, so the window never freezes. A task gets a :class:`TaskContext`
to report progress and to poll for cancellation; user errors (:class:`core.errors.R2CError`)
come back as their one-line message, anything else as a short line plus a logged traceback.
Callbacks run in the GUI thread, and only while their owner widget still exists.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)

_pool: QThreadPool | None = None
_serial: QThreadPool | None = None
_live: set[Task] = set()  # keeps signal holders alive until their results are delivered
_live_lock = threading.Lock()


class TaskCancelled(Exception):
    """Raised by :meth:`TaskContext.check` when the task was cancelled."""


@dataclass
class TaskContext:
    """What a running task sees: a progress reporter and a cancellation flag."""

    _progress: Callable[[int, int, str], None]
    _publish: Callable[[object], None]
    _event: threading.Event = field(default_factory=threading.Event)

    def publish(self, item: object) -> None:
        """Hand one partial result to the GUI thread now (e.g. each thumbnail as it is made)."""
        self._publish(item)

    def progress(self, done: int, total: int, message: str = "") -> None:
        self._progress(int(done), int(total), message)

    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise TaskCancelled()


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    progress = Signal(int, int, str)
    partial = Signal(object)


class Task(QRunnable):
    """One function call on the pool; see :func:`submit`."""

    def __init__(self, fn: Callable[[TaskContext], Any], name: str, serial: bool = False) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.name = name
        self.serial = serial  # a write that must happen even when cancelled before it started
        self.signals = _Signals()
        self.context = TaskContext(self.signals.progress.emit, self.signals.partial.emit)
        self.finished = threading.Event()

    def cancel(self) -> None:
        self.context._event.set()

    @property
    def is_cancelled(self) -> bool:
        return self.context.cancelled()

    def run(self) -> None:
        from core.errors import R2CError

        try:
            if self.context.cancelled() and not self.serial:
                raise TaskCancelled()  # cancelled while queued: skip the work
            result = self.fn(self.context)
        except TaskCancelled:
            self.signals.cancelled.emit()
        except R2CError as exc:
            self.signals.failed.emit(exc.one_line())
        except Exception as exc:  # a bug: keep the traceback in the log, give the user one line
            if self.context.cancelled() and type(exc).__name__.endswith("Cancelled"):
                self.signals.cancelled.emit()
            else:
                log.exception("background task %s failed", self.name)
                self.signals.failed.emit(f"{self.name} failed unexpectedly ({type(exc).__name__}: {exc})")
        else:
            if self.context.cancelled():
                self.signals.cancelled.emit()
            else:
                self.signals.done.emit(result)
        finally:
            self.finished.set()


def pool() -> QThreadPool:
    """The app's pool (not the global one, so tests can wait for exactly our work)."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(max(2, QThreadPool.globalInstance().maxThreadCount()))
    return _pool


def serial_pool() -> QThreadPool:
    """One thread: writes that must land in the order they were made (a reader's votes)."""
    global _serial
    if _serial is None:
        _serial = QThreadPool()
        _serial.setMaxThreadCount(1)
    return _serial


def _guard(owner: QObject | None, callback: Callable[..., None] | None) -> Callable[..., None]:
    def call(*args: Any) -> None:
        if callback is not None and (owner is None or shiboken6.isValid(owner)):
            callback(*args)

    return call


def submit(
    fn: Callable[[TaskContext], Any],
    *,
    owner: QObject | None = None,
    done: Callable[[Any], None] | None = None,
    failed: Callable[[str], None] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    cancelled: Callable[[], None] | None = None,
    partial: Callable[[object], None] | None = None,
    name: str = "task",
    priority: int = 0,
    serial: bool = False,
) -> Task:
    """Run ``fn(context)`` in the pool; callbacks run in the GUI thread while ``owner`` lives.

    Higher ``priority`` starts first (what the user is waiting for before thumbnails);
    ``serial`` tasks run one at a time, in submission order.
    """
    task = Task(fn, name, serial)
    s = task.signals
    s.done.connect(_guard(owner, done))
    s.failed.connect(_guard(owner, failed))
    s.cancelled.connect(_guard(owner, cancelled))
    if progress is not None:
        s.progress.connect(_guard(owner, progress))
    if partial is not None:
        s.partial.connect(_guard(owner, partial))
    for sig in (s.done, s.failed, s.cancelled):
        sig.connect(lambda *_args, t=task: _forget(t))
    with _live_lock:
        _live.add(task)
    (serial_pool() if serial else pool()).start(task, priority)
    return task


def _forget(task: Task) -> None:
    with _live_lock:
        _live.discard(task)


def wait_idle(timeout_ms: int = 30_000) -> bool:
    """Block until every submitted task has finished (tests, application exit)."""
    return serial_pool().waitForDone(timeout_ms) and pool().waitForDone(timeout_ms)


def cancel_all() -> None:
    with _live_lock:
        tasks = list(_live)
    for task in tasks:
        task.cancel()

"""Cyclic garbage collection on the GUI thread only.

Python's cycle collector runs in whichever thread happens to allocate when a threshold is
crossed. If that is a worker thread and the cycle holds a Qt wrapper (a lambda closing over a
widget, a signal connection), the C++ object is destroyed off the GUI thread and the process can
crash. So automatic collection is switched off while the app runs and a GUI-thread timer collects
instead; plain reference counting still frees almost everything immediately.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

_INTERVAL_MS = 1000


class _GuiThreadCollector(QObject):
    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)
        self.setObjectName("guiThreadCollector")
        self._timer = QTimer(self)
        self._timer.setInterval(_INTERVAL_MS)
        self._timer.timeout.connect(self.collect)
        self._timer.start()

    def collect(self) -> None:
        gc.collect(0)  # the cheap young generation every tick; full passes when it piles up
        if gc.get_count()[1] > 20:
            gc.collect()


def install() -> None:
    """Idempotent: call whenever a main window is created."""
    app = QCoreApplication.instance()
    if app is None:
        return
    gc.disable()
    if app.findChild(_GuiThreadCollector, "guiThreadCollector") is None:
        _GuiThreadCollector(app)

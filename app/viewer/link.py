"""Linking panes: a change in one pane's zoom/pan or window is mirrored in the others.

Geometry and window are linked separately (both on by default), because a reader may want
to zoom all panes together yet window one of them on its own.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.viewer.pane import ImagePane
from app.viewer.state import ViewState


class LinkGroup(QObject):
    """Mirrors state changes among its panes while linking is on."""

    linkChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panes: list[ImagePane] = []
        self.link_geometry = True
        self.link_window = True

    def panes(self) -> list[ImagePane]:
        return list(self._panes)

    def add(self, pane: ImagePane) -> None:
        if pane in self._panes:
            return
        if self._panes and self.linked:
            pane.set_state(self._merge(pane.state(), self._panes[0].state()))
        self._panes.append(pane)
        pane.stateChanged.connect(self._on_change)

    def remove(self, pane: ImagePane) -> None:
        if pane in self._panes:
            self._panes.remove(pane)
            pane.stateChanged.disconnect(self._on_change)

    def clear(self) -> None:
        for pane in list(self._panes):
            self.remove(pane)

    @property
    def linked(self) -> bool:
        return self.link_geometry or self.link_window

    def set_linked(self, geometry: bool, window: bool) -> None:
        self.link_geometry, self.link_window = geometry, window
        self.linkChanged.emit()

    def _merge(self, mine: ViewState, theirs: ViewState) -> ViewState:
        state = mine
        if self.link_geometry:
            state = state.geometry_from(theirs)
        if self.link_window:
            state = state.window_from(theirs)
        return state

    def _on_change(self, state: ViewState) -> None:
        source = self.sender()
        if not self.linked:
            return
        for pane in self._panes:
            if pane is not source:
                pane.set_state(self._merge(pane.state(), state))

    def broadcast(self, state: ViewState) -> None:
        """Set every pane (e.g. reset all), regardless of linking."""
        for pane in self._panes:
            pane.set_state(state)

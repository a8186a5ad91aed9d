"""What a pane shows and how: the image with its presets, and the shareable view state.

The view state is expressed relative to each pane's own image (zoom as a multiple of the
fit, pan as fractions of the image size, window relative to the image's default window),
so that linking panes whose images differ in size or value range (a 12-bit original beside
a 256x256 restoration scaled back) keeps them showing the same anatomy the same way.

The level is counted in the direction of the screen, not of the values: a positive level
is darker on screen whatever the photometric interpretation. On a MONOCHROME1 film higher
values are darker, so there the window centre moves the other way; one drag convention
(OHIF, Weasis) then holds for every film, and linked MONOCHROME1 and MONOCHROME2 panes
brighten and darken together.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.imaging import Window, XRay


@dataclass(frozen=True, eq=False)
class PaneImage:
    """Pixels to show (modality values), their window presets (first = default), inversion."""

    values: np.ndarray  # H x W (or H x W x 3 for colour renditions, windowed per channel)
    windows: list[Window]
    invert: bool = False
    pixel_spacing: tuple[float, float] | None = None
    overlay: np.ndarray | None = None  # bool mask, same H x W, drawn tinted (lungs)

    @property
    def width(self) -> int:
        return int(self.values.shape[1])

    @property
    def height(self) -> int:
        return int(self.values.shape[0])

    @property
    def base(self) -> Window:
        return self.windows[0]

    @classmethod
    def from_xray(cls, xray: XRay) -> PaneImage:
        """The film with its default window, the chest presets next (fixed keys 2-4), then its other presets."""
        windows = [xray.windows[0], *_chest_windows(xray), *xray.windows[1:]]
        return cls(xray.values, windows, xray.invert, xray.pixel_spacing)

    @classmethod
    def from_display(cls, image: np.ndarray, pixel_spacing: tuple[float, float] | None = None) -> PaneImage:
        """A display image in [0, 1], gray or RGB (a restoration, a study rendition): identity window."""
        from core.imaging import Window

        values = np.ascontiguousarray(image, dtype=np.float32)
        return cls(values, [Window.from_range(0.0, 1.0, "Full range")], False, pixel_spacing)

    def with_overlay(self, mask: np.ndarray | None) -> PaneImage:
        return replace(self, overlay=mask)


@dataclass(frozen=True)
class ViewState:
    """Zoom, pan, window and inversion, in units that mean the same on any image."""

    zoom: float = 1.0  # multiple of the scale that fits the image in the pane
    center: tuple[float, float] = (0.5, 0.5)  # image point at the pane centre (fractions of width, height)
    level: float = 0.0  # window centre shift from the default, in default widths, towards darker on screen
    width: float = 1.0  # window width in default widths
    inverted: bool = False  # flipped relative to the image's own inversion
    preset: int = 0  # index of the preset the window came from (its function / LUT is used while unchanged)
    touched: bool = False  # the window was dragged away from the preset

    def geometry_from(self, other: ViewState) -> ViewState:
        return replace(self, zoom=other.zoom, center=other.center)

    def window_from(self, other: ViewState) -> ViewState:
        return replace(self, level=other.level, width=other.width, inverted=other.inverted,
                       preset=other.preset, touched=other.touched)


_CHEST: weakref.WeakKeyDictionary[XRay, list[Window]] = weakref.WeakKeyDictionary()


def _chest_windows(xray: XRay) -> list[Window]:
    """The film's chest presets, computed once per loaded film (panes are rebuilt often)."""
    if xray not in _CHEST:
        from core.imaging.presets import chest_windows

        _CHEST[xray] = chest_windows(xray.values, xray.invert)
    return _CHEST[xray]


def window_for(image: PaneImage, state: ViewState) -> Window:
    """The absolute window a state means on an image (the preset itself while unchanged)."""
    from core.imaging import Window

    base = image.base
    has_preset = 0 <= state.preset < len(image.windows)
    preset = image.windows[state.preset] if has_preset else base
    if has_preset and not state.touched:
        return preset
    center = base.center + _darker(image) * state.level * base.width
    width = max(state.width * base.width, 1e-6)
    function = preset.function if preset.lut is None else "LINEAR"
    return Window(center, width, "Custom", function)


def state_for_preset(image: PaneImage, state: ViewState, index: int) -> ViewState:
    """The state that selects preset ``index`` (relative numbers kept in step for linked panes)."""
    base = image.base
    preset = image.windows[index]
    return replace(state, preset=index, touched=False,
                   level=_darker(image) * (preset.center - base.center) / base.width, width=preset.width / base.width)


def _darker(image: PaneImage) -> float:
    """+1 where raising the window centre darkens the screen (MONOCHROME2), -1 where it brightens it.

    Only the film's own inversion counts: the reader's invert toggle swaps black and white of
    the same window, and linked panes share it, so they still move together.
    """
    return -1.0 if image.invert else 1.0

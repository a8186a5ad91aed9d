"""The VOI transform of a film: a window (center/width and DICOM function) or a VOI lookup table.

Its own module because both the loaded film (:mod:`core.imaging.xray`) and the renderer
(:mod:`core.imaging.display`) need it, and neither should import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

WindowFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
WINDOW_FUNCTIONS: tuple[str, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True, eq=False)
class VoiLut:
    """A VOI lookup table (DICOM VOI LUT Sequence item) in ``values`` units.

    ``table[i]`` is the display level in [0, 1] of input value ``first_mapped + i``; inputs
    below the first entry take ``table[0]``, inputs beyond the last take ``table[-1]``.
    Compared by identity: tables are large and never edited.
    """

    first_mapped: float
    table: np.ndarray
    explanation: str = ""

    def __post_init__(self) -> None:
        table = np.ascontiguousarray(self.table, dtype=np.float32)
        table.setflags(write=False)
        object.__setattr__(self, "table", table)

    @property
    def input_range(self) -> tuple[float, float]:
        """The first and last input value that has its own table entry."""
        return self.first_mapped, self.first_mapped + len(self.table) - 1


@dataclass(frozen=True)
class Window:
    """A VOI transform in ``values`` units: a window (center/width + function) or a VOI LUT.

    For a LUT, ``center``/``width`` describe the LUT's input range, so that a viewer can
    start its window sliders there; rendering uses the table.
    """

    center: float
    width: float
    name: str = ""
    function: WindowFunction = "LINEAR"
    lut: VoiLut | None = None

    def __post_init__(self) -> None:
        if self.function not in WINDOW_FUNCTIONS:
            raise ValueError(f"unknown VOI LUT function {self.function!r}")
        if self.lut is None and not self.width > 0:
            raise ValueError(f"window width must be positive, got {self.width}")

    @classmethod
    def from_range(cls, low: float, high: float, name: str) -> Window:
        """The window mapping ``low`` to black and ``high`` to white, linearly and exactly."""
        if high <= low:
            high = low + 1.0
        return cls((low + high) / 2.0, high - low, name, "LINEAR_EXACT")

    @classmethod
    def from_lut(cls, lut: VoiLut, name: str) -> Window:
        first, last = lut.input_range
        return cls((first + last + 1) / 2.0, float(len(lut.table)), name, "LINEAR", lut)

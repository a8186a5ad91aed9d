"""The loaded X-ray: display-ready pixels, the values to re-window, metadata and identifiers.

Identifiers live in their own :class:`PatientInfo` so that a blinded view can drop them in
one step (:meth:`XRay.blinded`) instead of remembering which attributes are identifying.
Pixel arrays are made read-only, so copies (e.g. the blinded one) can share them safely.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.imaging.window import Window

# The fields that name the patient outright, hidden by the viewer's identifier toggle (the
# rest of PatientInfo, e.g. sex, age, study date, helps reading and names nobody alone).
DIRECT_IDENTIFIERS: tuple[str, ...] = ("patient_name", "patient_id", "birth_date", "accession_number")


@dataclass(frozen=True)
class PatientInfo:
    """Identifying data of the film, kept apart from the pixels so blinded views can drop it."""

    patient_name: str | None = None
    patient_id: str | None = None
    birth_date: str | None = None
    sex: str | None = None
    age: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    study_description: str | None = None
    series_description: str | None = None
    accession_number: str | None = None
    institution: str | None = None
    referring_physician: str | None = None
    station_name: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None

    def is_empty(self) -> bool:
        return all(value is None for value in dataclasses.asdict(self).values())

    def without_direct_identifiers(self) -> PatientInfo:
        """A copy without :data:`DIRECT_IDENTIFIERS` (what a teaching or study screen may show)."""
        return dataclasses.replace(self, **{name: None for name in DIRECT_IDENTIFIERS})


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.flags.writeable:
        array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class XRay:
    """One radiograph, ready to show.

    ``values`` are the modality values (after Modality LUT / rescale for DICOM, gray levels
    for rasters); ``windows[0]`` is the default VOI; ``display`` is ``render()`` with the
    defaults, computed once at construction so that workers hand the GUI finished pixels.
    """

    values: np.ndarray
    windows: list[Window]
    invert: bool
    source: Path
    bits_stored: int
    photometric: str
    modality: str | None = None
    pixel_spacing: tuple[float, float] | None = None
    identifiers: PatientInfo = field(default_factory=PatientInfo)
    display: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        values = _read_only(self.values)
        if values.ndim != 2 or values.size == 0:
            raise ValueError(f"values must be a non-empty 2-D array, got shape {values.shape}")
        if not self.windows:
            raise ValueError("an XRay needs at least one window")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "windows", list(self.windows))
        object.__setattr__(self, "source", Path(self.source))
        if self.display is None:
            object.__setattr__(self, "display", _read_only(self.render()))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.values.shape[1]), int(self.values.shape[0])

    @property
    def default_window(self) -> Window:
        return self.windows[0]

    def render(self, window: Window | None = None, invert: bool | None = None) -> np.ndarray:
        """Display levels in [0, 1] (float32): VOI (window or LUT), then inversion."""
        from core.imaging.display import render

        return render(
            self.values,
            self.windows[0] if window is None else window,
            self.invert if invert is None else invert,
        )

    def to_uint8(self) -> np.ndarray:
        """``display`` as 8-bit gray levels (rounded to nearest)."""
        return to_uint8(self.display)

    def blinded(self) -> XRay:
        """A copy without identifiers (pixels are shared; they are read-only)."""
        return dataclasses.replace(self, identifiers=PatientInfo(), display=self.display)


def to_uint8(display: np.ndarray) -> np.ndarray:
    """Map display levels in [0, 1] to 0..255 with rounding (8-bit input round-trips exactly)."""
    return np.rint(np.clip(display, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)

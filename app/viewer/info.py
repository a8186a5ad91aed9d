"""The image facts and patient identifiers of the current X-ray (viewer only, never reader mode).

Direct identifiers (name, ID, birth date, accession number) can be hidden, for teaching and
study screens that others watch; the row then says they are hidden rather than absent.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from core.imaging import XRay

_LABELS = {
    "patient_name": "Patient name",
    "patient_id": "Patient ID",
    "birth_date": "Birth date",
    "sex": "Sex",
    "age": "Age",
    "study_date": "Study date",
    "study_time": "Study time",
    "study_description": "Study",
    "series_description": "Series",
    "accession_number": "Accession no.",
    "institution": "Institution",
    "referring_physician": "Referring physician",
    "station_name": "Station",
}


class InfoPanel(QScrollArea):
    """A read-only form; empty fields are left out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._form = QFormLayout()
        self._layout.addLayout(self._form)
        self._layout.addStretch(1)
        self.setWidget(self._body)
        self._xray: XRay | None = None
        self._show_identifiers = True
        self.set_xray(None)

    def set_show_identifiers(self, show: bool) -> None:
        self._show_identifiers = show
        self.set_xray(self._xray)

    def shows_identifiers(self) -> bool:
        return self._show_identifiers

    def set_xray(self, xray: XRay | None) -> None:
        self._xray = xray
        while self._form.rowCount():
            self._form.removeRow(0)
        if xray is None:
            self._form.addRow(QLabel("No image open."))
            return
        w, h = xray.size
        rows = [("File", xray.source.name), ("Size", f"{w} × {h} px"),
                ("Type", f"{xray.modality or 'raster'} · {xray.photometric} · {xray.bits_stored} bit")]
        if xray.pixel_spacing:
            rows.append(("Pixel spacing", f"{xray.pixel_spacing[0]:.3g} × {xray.pixel_spacing[1]:.3g} mm"))
        info = xray.identifiers
        hidden = not self._show_identifiers and info != info.without_direct_identifiers()
        if not self._show_identifiers:
            info = info.without_direct_identifiers()
        ids = dataclasses.asdict(info)
        shown = [(label, ids[key]) for key, label in _LABELS.items() if ids.get(key)]
        shown = [(label, _person(v) if label.endswith(("name", "physician")) else v) for label, v in shown]
        if hidden:
            shown.insert(0, ("Patient", "identifiers hidden"))
        rows += shown or [("Patient", "no identifiers in this file")]
        for label, value in rows:
            field = QLabel(str(value))
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._form.addRow(f"{label}:", field)


def _person(name: str) -> str:
    """DICOM person name ``Family^Given^Middle`` as "Family, Given Middle"."""
    family, _, rest = name.partition("^")
    rest = " ".join(p for p in rest.split("^") if p)
    return f"{family}, {rest}" if rest else family

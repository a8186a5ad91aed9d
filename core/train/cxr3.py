"""The three-class films of ``../shared/data``: normal / COVID-19 / pneumonia, and their patient split.

* normal: ``cxr_labeled`` controls and ``cxr_nih`` no-finding films;
* COVID-19: ``cxr_labeled`` COVID-19 films and ``cxr_covid_extra``;
* pneumonia: ``cxr_nih`` pneumonia films.

The split is by patient (a hash of ``patient_key`` and the seed, so it is stable when films are
added and the same for the pix2pix synthesizer and the classifier: with the same seed, the
classifier's test patients were never seen by the synthesizer either).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.errors import TrainingError
from core.train.data import read_label_table

NORMAL, COVID19, PNEUMONIA = "normal", "COVID-19", "pneumonia"
CLASSES = (NORMAL, COVID19, PNEUMONIA)
FOLDERS = ("cxr_labeled", "cxr_nih", "cxr_covid_extra")
_RAW = {"control": NORMAL, "normal": NORMAL, "no_finding": NORMAL, "no finding": NORMAL,
        "covid": COVID19, "covid-19": COVID19, "covid19": COVID19, "pneumonia": PNEUMONIA}


@dataclass(frozen=True)
class ClassFilm:
    path: Path
    cls: str
    patient_key: str
    source: str  # the folder and the upstream repository, e.g. "cxr_nih"

    @property
    def name(self) -> str:
        return self.path.name


def read_folder(folder: Path) -> list[ClassFilm]:
    films = []
    for row in read_label_table(folder):
        cls = _RAW.get(row.label)
        if cls is None:
            raise TrainingError(row.table,
                                f"row {row.row_no}: label {row.label!r} is not normal, COVID-19 or pneumonia")
        films.append(ClassFilm(row.path, cls, row.patient_key or f"{folder.name}:{row.path.name}", folder.name))
    return films


def read_three_class(data_root: str | Path, folders: tuple[str, ...] = FOLDERS) -> list[ClassFilm]:
    """Every film of the known folders under ``data_root`` (those present; at least one)."""
    root = Path(data_root)
    present = [root / name for name in folders if (root / name / "labels.csv").is_file()]
    if not present:
        raise TrainingError(root, f"none of {', '.join(folders)} (with labels.csv) found here")
    return [film for folder in present for film in read_folder(folder)]


def patient_split(films: list[ClassFilm], test_fraction: float, seed: int) -> tuple[list[ClassFilm], list[ClassFilm]]:
    """(train, test): a patient is a test patient when a hash of its key and ``seed`` falls below
    ``test_fraction``; no patient is on both sides."""
    if not 0 < test_fraction < 1:
        raise TrainingError(None, f"test fraction must be in (0, 1), got {test_fraction}")
    train, test = [], []
    for film in films:
        h = int(hashlib.sha256(f"cxr3:{seed}:{film.patient_key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (test if h < test_fraction else train).append(film)
    return train, test


def by_class(films: list[ClassFilm], cls: str) -> list[ClassFilm]:
    return [f for f in films if f.cls == cls]

"""Training and evaluation data: labelled X-ray folders, lung-mask folders, patient-wise splits.

Folder layouts (those of ``../shared/data``, so the same commands run on any folder laid
out alike):

* labelled: ``<dir>/*.png`` plus ``<dir>/labels.csv`` with at least ``file`` and ``label``
  (``covid``/``COVID-19``/``1`` vs ``control``/``normal``/``0``); optional ``patient_key``
  (one patient may have several films; splits never separate them) and ``source_repo``.
* lung masks: ``<dir>/images/X.png`` with ``<dir>/masks/X.png``; the dataset is the file
  name prefix before the first underscore (e.g. ``shenzhen``), or ``dataset`` in an
  optional ``sources.csv``.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from core.errors import TrainingError

COVID, CONTROL = 1, 0
CLASS_NAMES = ("control", "COVID-19")
_LABELS = {"covid": COVID, "covid-19": COVID, "covid19": COVID, "1": COVID, "positive": COVID,
           "control": CONTROL, "normal": CONTROL, "0": CONTROL, "negative": CONTROL}


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    label: int
    patient_key: str
    source: str
    raw_label: str = ""  # the label as the table writes it (e.g. NIH "pneumonia" for an UNLABELED film)

    @property
    def name(self) -> str:
        return self.path.name


def read_gray(path: Path) -> np.ndarray:
    """Display-ready float32 image in [0, 1] through the app's own loader (any supported format)."""
    from core.imaging import load_xray

    return load_xray(path).display


UNLABELED = -1  # a film whose label is not COVID-19/control (e.g. NIH pneumonia): restoration only


@dataclass(frozen=True)
class LabelRow:
    """One checked row of a folder's ``labels.csv``: the film exists; the label is as written."""

    path: Path
    label: str  # stripped, lower case; each reader maps it to its own classes
    patient_key: str  # "" when the table has none
    source: str  # the ``source_repo`` column, "" when absent
    row_no: int
    table: Path


def read_label_table(folder: str | Path) -> list[LabelRow]:
    """The rows of ``<folder>/labels.csv`` (columns ``file``, ``label``, optional ``patient_key`` and
    ``source_repo``); one reader for every training path, so that the same table is checked the same
    way wherever it is read."""
    folder = Path(folder)
    table = folder / "labels.csv"
    if not table.is_file():
        raise TrainingError(folder, "no labels.csv (expected columns: file, label[, patient_key, source_repo])")
    rows: list[LabelRow] = []
    try:
        with open(table, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"file", "label"} - set(reader.fieldnames or [])
            if missing:
                raise TrainingError(table, f"missing column(s): {', '.join(sorted(missing))}")
            for row_no, row in enumerate(reader, start=2):
                name, label = (row.get("file") or "").strip(), (row.get("label") or "").strip().lower()
                if not name or not label:
                    raise TrainingError(table, f"row {row_no}: empty file or label")
                path = folder / name
                if not path.is_file():
                    raise TrainingError(table, f"row {row_no}: image {name} not found")
                rows.append(LabelRow(path, label, (row.get("patient_key") or "").strip(),
                                     (row.get("source_repo") or "").strip(), row_no, table))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TrainingError(table, f"not a readable CSV table ({exc})") from None
    return rows


def read_labeled_folder(folder: str | Path, other_labels: bool = False) -> list[LabeledImage]:
    """The films listed in ``labels.csv``; with ``other_labels``, labels other than COVID-19/control
    (NIH no_finding, pneumonia) are kept as ``UNLABELED`` instead of being an error."""
    items: list[LabeledImage] = []
    rows = read_label_table(folder)
    for row in rows:
        label = _LABELS.get(row.label, UNLABELED if other_labels else None)
        if label is None:
            raise TrainingError(row.table, f"row {row.row_no}: unknown label {row.label!r} (use covid or control)")
        items.append(LabeledImage(row.path, label, row.patient_key or f"file:{row.path.name}",
                                  row.source or "unknown", row.label))
    if not items:
        raise TrainingError(Path(folder) / "labels.csv", "no images listed")
    return items


def is_covid_label(label: str) -> bool:
    """Whether a label as written in a table (stripped, lower case) means COVID-19."""
    return _LABELS.get(label) == COVID


def split_by_patient(items: list[LabeledImage], test_fraction: float, seed: int) -> tuple[list, list]:
    """Patient-grouped split, stratified by label and source as far as the groups allow."""
    if not 0 < test_fraction < 1:
        raise TrainingError(None, f"test fraction must be in (0, 1), got {test_fraction}")
    folds = max(2, round(1 / test_fraction))
    strata = [f"{it.label}|{it.source}" for it in items]
    # Rare strata break stratification; fold them into their label.
    counts: dict[str, int] = {}
    for s in strata:
        counts[s] = counts.get(s, 0) + 1
    strata = [s if counts[s] >= folds else s.split("|")[0] for s in strata]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    train_idx, test_idx = next(splitter.split(np.zeros(len(items)), strata, [it.patient_key for it in items]))
    return [items[i] for i in sorted(train_idx)], [items[i] for i in sorted(test_idx)]


@dataclass(frozen=True)
class MaskPair:
    image: Path
    mask: Path
    dataset: str


def read_mask_folder(folder: str | Path) -> list[MaskPair]:
    folder = Path(folder)
    images, masks = folder / "images", folder / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise TrainingError(folder, "expected images/ and masks/ subfolders")
    datasets: dict[str, str] = {}
    sources = folder / "sources.csv"
    if sources.is_file():
        with open(sources, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("file") and row.get("dataset"):
                    datasets[row["file"]] = row["dataset"]
    pairs = []
    for img in sorted(p for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff")):
        mask = masks / img.name
        if not mask.is_file():
            raise TrainingError(img, f"no mask {mask.name} in {masks}")
        prefix = img.stem.split("_", 1)[0]
        pairs.append(MaskPair(img, mask, prefix if prefix != img.stem else datasets.get(img.name, "unknown")))
    if not pairs:
        raise TrainingError(folder, "no image/mask pairs")
    return pairs


def holdout_by_patient(items: list[LabeledImage], fraction: float, seed: int) -> tuple[list, list]:
    """(train, held out): a patient is held out when a hash of its key and the seed falls below
    ``fraction``, so the split is stable when films are added (no stratification needed)."""
    train, held = [], []
    for it in items:
        h = int(hashlib.sha256(f"{seed}:{it.patient_key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (held if h < fraction else train).append(it)
    return train, held


def split_masks(pairs: list[MaskPair], test_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic split per dataset by a hash of the file name and the seed (stable when files are added)."""
    train, test = [], []
    for p in pairs:
        h = int(hashlib.sha256(f"{seed}:{p.image.name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (test if h < test_fraction else train).append(p)
    return train, test


def read_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise TrainingError(path, "mask cannot be read")
    if shape is not None and mask.shape != shape:
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return mask > 127

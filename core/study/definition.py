"""What a study is made of, before it is in the database: cases, candidates, readers, design.

Everything here validates user input (a folder, a CSV of cases, candidate spec strings)
and raises ``StudyDefinitionError`` naming the file, row or spec and the reason. A CSV with
several bad rows reports all of them at once, so a study author fixes the file in one go.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from core.enhance import DEFAULT_CLAHE_CLIP, ENHANCEMENTS
from core.errors import StudyDefinitionError
from core.study.presentation import PRESENTATIONS
from core.variants import VARIANTS

KINDS = ("restoration", "segmentation", "diagnosis", "authenticity")
# authenticity ("real or synthetic?"): single films, the case label is the truth (real or synthetic)
AUTHENTICITY_LABELS = ("real", "synthetic")
RATING_SCALES = {"5-point": (1, 5), "0-100": (0, 100)}  # diagnosis: disease rating, higher = more likely
DESIGNS = ("split", "all", "anchor")
PANE_LABEL_STYLES = ("letters", "numbers")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")
LABELS = ("COVID-19", "control")
_LABEL_ALIASES = {"covid-19": "COVID-19", "covid19": "COVID-19", "covid": "COVID-19", "control": "control",
                  "real": "real", "synthetic": "synthetic"}


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class CandidateSpec:
    """One column: ``original``, ``clahe[:CLIP]``, ``histeq`` or ``VARIANT[:ITERATIONS]``."""

    spec: str  # canonical form, e.g. "r2c-q3:3", "clahe:2"
    kind: str  # original | enhancement | generator
    display_name: str
    variant_id: str | None = None
    iterations: int | None = None
    clip_limit: float | None = None

    @property
    def is_original(self) -> bool:
        return self.kind == "original"


ORIGINAL = CandidateSpec("original", "original", "Original")


def parse_candidate(text: str, default_iterations: dict[str, int] | None = None) -> CandidateSpec:
    """Parse a candidate spec; ``default_iterations`` maps variant id -> installed manifest default."""
    raw = text.strip()
    name, _, arg = raw.partition(":")
    name = name.strip().lower()
    arg = arg.strip()
    if name == "original" and not arg:
        return ORIGINAL
    if name == "histeq" and not arg:
        return CandidateSpec("histeq", "enhancement", ENHANCEMENTS["histeq"])
    if name == "clahe":
        try:
            clip = float(arg) if arg else DEFAULT_CLAHE_CLIP
        except ValueError:
            clip = -1.0
        if not 0 < clip <= 40:
            raise StudyDefinitionError(raw, "CLAHE clip limit must be a number in (0, 40], e.g. clahe:2")
        shown = ENHANCEMENTS["clahe"] + ("" if clip == DEFAULT_CLAHE_CLIP else f" (clip {clip:g})")
        return CandidateSpec(f"clahe:{clip:g}", "enhancement", shown, clip_limit=clip)
    if name in VARIANTS:
        from core.restore import MAX_ITERATIONS

        variant = VARIANTS[name]
        if arg:
            if not re.fullmatch(r"\d+", arg) or not 1 <= int(arg) <= MAX_ITERATIONS:
                raise StudyDefinitionError(raw, f"iterations must be a whole number from 1 to {MAX_ITERATIONS}")
            iterations = int(arg)
        else:
            iterations = (default_iterations or {}).get(name, variant.default_iterations)
        shown = variant.display_name + ("" if iterations == variant.default_iterations else f" ×{iterations}")
        return CandidateSpec(f"{name}:{iterations}", "generator", shown, variant_id=name, iterations=iterations)
    known = ", ".join(VARIANTS)
    raise StudyDefinitionError(raw or "(empty)", f"unknown candidate; use original, clahe[:CLIP], histeq or a "
                                                 f"generator variant[:ITERATIONS] ({known})")


def parse_candidates(texts: list[str] | str, default_iterations: dict[str, int] | None = None) -> list[CandidateSpec]:
    """Parse a list (or a comma-separated string); the original is always included, first."""
    items = [t for t in (texts.split(",") if isinstance(texts, str) else texts) if t.strip()]
    parsed = [parse_candidate(t, default_iterations) for t in items]
    seen: dict[str, str] = {}
    for text, cand in zip(items, parsed, strict=True):
        if cand.spec in seen:
            raise StudyDefinitionError(text.strip(), f"duplicate candidate (same as {seen[cand.spec]!r})")
        seen[cand.spec] = text.strip()
    rest = [c for c in parsed if not c.is_original]
    if not rest:
        raise StudyDefinitionError(None, "a study needs at least one candidate besides the original")
    return [ORIGINAL, *rest]


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class CaseSpec:
    key: str  # the case's name, unique in the study
    path: Path
    label: str | None
    sha256: str = ""
    tier: str | None = None  # optional quality tier from the case list; allocation is stratified by it

    @property
    def stratum(self) -> str:
        """Allocation stratum: the disease label and the quality tier."""
        return f"{self.label or ''}|{self.tier or ''}"


def normalize_label(text: str | None) -> str | None:
    """'covid', 'COVID-19', 'Covid19' -> 'COVID-19'; 'control' -> 'control'; '' -> None."""
    if text is None or not text.strip():
        return None
    label = _LABEL_ALIASES.get(text.strip().lower())
    if label is None:
        raise ValueError(f"unknown label {text.strip()!r} (expected {' or '.join(LABELS)}; "
                         f"{' or '.join(AUTHENTICITY_LABELS)} in a real-or-synthetic study)")
    return label


def _label_from_name(path: Path) -> str | None:
    """covid_0001.png / control_0002.png, or a COVID-19/ or control/ parent folder."""
    for token in (re.split(r"[_\-\s.]", path.stem)[0], path.parent.name):
        try:
            label = normalize_label(token)
        except ValueError:
            continue
        if label:
            return label
    return None


def cases_from_folder(folder: str | Path) -> list[CaseSpec]:
    """Every image under ``folder`` (sorted); labels from file-name prefixes or folder names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudyDefinitionError(folder, "case folder not found")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise StudyDefinitionError(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    cases = [CaseSpec(p.relative_to(folder).with_suffix("").as_posix(), p.resolve(), _label_from_name(p))
             for p in files]
    return _with_hashes(cases, folder, [str(p.relative_to(folder)) for p in files])


_FILE_COLUMNS = ("file", "path", "image")
_CASE_COLUMNS = ("case", "id", "case_id")
_TIER_COLUMNS = ("tier", "quality")


def cases_from_csv(csv_path: str | Path) -> list[CaseSpec]:
    """Rows of ``file`` (or path/image), optional ``label``, ``case`` and ``tier`` (or quality: a quality
    tier the reader allocation is stratified by); paths relative to the CSV. Without a case column a
    case is named by its file name (by its listed path only when file names repeat)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise StudyDefinitionError(csv_path, "case list not found")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            rows = [({(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}, reader.line_num)
                    for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise StudyDefinitionError(csv_path, f"not a readable CSV file ({exc})") from None
    file_col = next((c for c in _FILE_COLUMNS if c in header), None)
    if file_col is None:
        raise StudyDefinitionError(csv_path, f"needs a column named {' or '.join(_FILE_COLUMNS)} (found: "
                                             f"{', '.join(header) or 'no header'})")
    case_col = next((c for c in _CASE_COLUMNS if c in header), None)
    problems: list[str] = []
    cases: list[CaseSpec] = []
    where: list[str] = []
    for row, line in rows:
        if not any(row.values()):
            continue
        name = row.get(file_col, "")
        if not name:
            problems.append(f"row {line}: no file given")
            continue
        path = Path(name).expanduser()
        path = path if path.is_absolute() else (csv_path.parent / path)
        try:
            label = normalize_label(row.get("label"))
        except ValueError as exc:
            problems.append(f"row {line}: {exc}")
            continue
        if not path.is_file():
            problems.append(f"row {line}: file {name} not found")
            continue
        key = row.get(case_col or "", "") or Path(name).with_suffix("").as_posix()
        tier = next((row[c] for c in _TIER_COLUMNS if row.get(c)), None)
        cases.append(CaseSpec(key, path.resolve(), label, tier=tier))
        where.append(f"row {line}")
    _raise_problems(csv_path, problems)
    if not cases:
        raise StudyDefinitionError(csv_path, "lists no cases")
    if not case_col:  # name cases by file name, not by a (site-local) path, whenever the names are unique
        stems = [c.path.stem for c in cases]
        if len(set(stems)) == len(stems):
            cases = [CaseSpec(stem, c.path, c.label, tier=c.tier) for stem, c in zip(stems, cases, strict=True)]
    return _with_hashes(cases, csv_path, where)


def _with_hashes(cases: list[CaseSpec], source: Path, where: list[str]) -> list[CaseSpec]:
    """Fill in file hashes and reject duplicates: same name, same file, or same image content."""
    from core.weights.model_file import sha256_of

    problems: list[str] = []
    by_key: dict[str, str] = {}
    by_hash: dict[str, str] = {}
    out: list[CaseSpec] = []
    for case, at in zip(cases, where, strict=True):
        digest = sha256_of(case.path)
        if case.key in by_key:
            problems.append(f"{at}: duplicate case {case.key!r} (also {by_key[case.key]})")
        elif digest in by_hash:
            problems.append(f"{at}: duplicate case: {case.path.name} has the same content as {by_hash[digest]}")
        by_key.setdefault(case.key, at)
        by_hash.setdefault(digest, at)
        out.append(CaseSpec(case.key, case.path, case.label, digest, case.tier))
    _raise_problems(source, problems)
    return out


def _raise_problems(source: Path, problems: list[str]) -> None:
    if not problems:
        return
    shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
    error = StudyDefinitionError(source, f"{len(problems)} bad row(s): {shown}" if len(problems) > 1 else shown)
    error.problems = problems  # type: ignore[attr-defined]
    raise error


def read_cases(source: str | Path) -> list[CaseSpec]:
    """Cases from a folder of images or a CSV file."""
    source = Path(source)
    if source.is_dir():
        return cases_from_folder(source)
    if source.suffix.lower() == ".csv" or source.is_file():
        return cases_from_csv(source)
    raise StudyDefinitionError(source, "not found (give a folder of images or a CSV of cases)")


# --------------------------------------------------------------------------- the whole study


def roman(n: int) -> str:
    numerals = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, letters in numerals:
        while n >= value:
            out += letters
            n -= value
    return out


def default_reader_names(count: int) -> list[str]:
    """'MD I', 'MD II', ... as in the paper's tables."""
    return [f"MD {roman(i + 1)}" for i in range(count)]


@dataclass
class StudySpec:
    name: str
    cases: list[CaseSpec]
    candidates: list[CandidateSpec]
    readers: list[str]
    kind: str = "restoration"
    design: str = "split"
    anchor_cases: int = 0
    qc_repeats: int = 0
    seed: int = 0
    show_label: bool = True
    presentation_size: int = 512
    pane_labels: str = "letters"
    # How panes are shown (core.study.presentation): "paper", every pane at the model's 256 px, or
    # "native", every pane carried to the film's resolution and shown at up to presentation_size px.
    presentation: str = "paper"
    ask_confidence: bool = False  # readers rate their confidence (1-5) with every vote
    # Diagnosis (MRMC ROC) studies only: the disease rating scale and the least days between sessions.
    rating_scale: str | None = None
    washout_days: float | None = None

    def validate(self) -> None:
        name = self.name.strip()
        if not name or len(name) > 200:
            raise StudyDefinitionError(self.name or "(no name)", "a study name must have 1 to 200 characters")
        self.name = name
        if self.kind not in KINDS:
            raise StudyDefinitionError(name, f"study type {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.design not in DESIGNS:
            raise StudyDefinitionError(name, f"design {self.design!r} is not one of {', '.join(DESIGNS)}")
        if self.pane_labels not in PANE_LABEL_STYLES:
            raise StudyDefinitionError(name, f"pane labels {self.pane_labels!r} not one of "
                                             f"{', '.join(PANE_LABEL_STYLES)}")
        readers = [r.strip() for r in self.readers]
        if not readers or any(not r or len(r) > 100 for r in readers):
            raise StudyDefinitionError(name, "give at least one reader; names have 1 to 100 characters")
        dupes = sorted({r for r in readers if readers.count(r) > 1})
        if dupes:
            raise StudyDefinitionError(name, f"duplicate reader {dupes[0]!r}")
        self.readers = readers
        if not self.cases:
            raise StudyDefinitionError(name, "a study needs at least one case")
        if self.kind == "authenticity":
            self._validate_authenticity(name)
        elif len(self.candidates) < 2 or not self.candidates[0].is_original:
            raise StudyDefinitionError(name, "candidates must start with the original and have at least one more")
        else:
            truths = [c for c in self.cases if c.label in AUTHENTICITY_LABELS]
            if truths:
                raise StudyDefinitionError(truths[0].path, f"case {truths[0].key!r} is labelled {truths[0].label!r}: "
                                                           "real/synthetic labels belong to a real-or-synthetic study")
        if self.pane_labels == "letters" and len(self.candidates) > 26:
            raise StudyDefinitionError(name, "at most 26 candidates with letter pane labels")
        if not 256 <= self.presentation_size <= 4096:
            raise StudyDefinitionError(name, "presentation size must be between 256 and 4096 pixels")
        if self.presentation not in PRESENTATIONS:
            raise StudyDefinitionError(name, f"presentation {self.presentation!r} is not one of "
                                             f"{', '.join(PRESENTATIONS)}")
        if not 0 <= self.seed < 2**63:
            raise StudyDefinitionError(name, "the seed must be a non-negative integer below 2**63")
        n_cases, n_readers = len(self.cases), len(readers)
        if self.design == "split" and n_cases < n_readers:
            raise StudyDefinitionError(name, f"cannot split {n_cases} case(s) between {n_readers} readers")
        if self.design == "anchor":
            if n_readers < 2:
                raise StudyDefinitionError(name, "the anchor design needs at least two readers")
            if not 1 <= self.anchor_cases <= n_cases:
                raise StudyDefinitionError(name, f"anchor cases must be between 1 and {n_cases}")
            if n_cases - self.anchor_cases and n_cases - self.anchor_cases < n_readers:
                raise StudyDefinitionError(name, f"{n_cases - self.anchor_cases} non-anchor case(s) cannot be "
                                                 f"split between {n_readers} readers")
        elif self.anchor_cases:
            raise StudyDefinitionError(name, "anchor cases apply to the anchor design only")
        if self.qc_repeats < 0:
            raise StudyDefinitionError(name, "QC repeats cannot be negative")
        if self.kind == "diagnosis":
            self._validate_diagnosis(name)
        elif self.rating_scale is not None or self.washout_days is not None:
            raise StudyDefinitionError(name, "a rating scale and a washout apply to diagnosis studies only")
        if self.show_label:
            unlabeled = [c for c in self.cases if c.label is None]
            if unlabeled:
                raise StudyDefinitionError(unlabeled[0].path, f"case {unlabeled[0].key!r} has no disease label, "
                                                              "but the study shows labels (label it or hide labels)")

    def _validate_authenticity(self, name: str) -> None:
        """Single films, truth hidden, the film as it is (no candidate transforms), real and synthetic both present."""
        if self.show_label:
            raise StudyDefinitionError(name, "a real-or-synthetic study hides which films are synthetic")
        if [c.spec for c in self.candidates] != ["original"]:
            raise StudyDefinitionError(name, "a real-or-synthetic study shows each film as it is (candidates: "
                                             "original only)")
        if self.qc_repeats:
            raise StudyDefinitionError(name, "a real-or-synthetic study has no hidden repeats")
        if self.presentation != "paper":
            raise StudyDefinitionError(name, "a real-or-synthetic study uses its own matched presentation "
                                             "(every film on the synthesizer's square grid; give presentation paper)")
        if self.rating_scale is not None or self.washout_days is not None:
            raise StudyDefinitionError(name, "a rating scale and a washout apply to diagnosis studies only")
        wrong = [c for c in self.cases if c.label not in AUTHENTICITY_LABELS]
        if wrong:
            raise StudyDefinitionError(wrong[0].path, f"case {wrong[0].key!r} is not labelled real or synthetic "
                                                      "(the study's truth)")
        if len({c.label for c in self.cases}) < 2:
            raise StudyDefinitionError(name, "a real-or-synthetic study needs real and synthetic films")

    def _validate_diagnosis(self, name: str) -> None:
        """Labels hidden, every reader reads every case in every modality, truth for every case."""
        if self.show_label:
            raise StudyDefinitionError(name, "a diagnosis study hides the disease label (it is what readers rate)")
        if self.design != "all":
            raise StudyDefinitionError(name, "a diagnosis study is fully crossed: every reader reads every case "
                                             "(design 'all')")
        if self.qc_repeats or self.ask_confidence:
            raise StudyDefinitionError(name, "a diagnosis study has no hidden repeats or separate confidence "
                                             "rating (the disease rating is the answer)")
        self.rating_scale = self.rating_scale or "5-point"
        if self.rating_scale not in RATING_SCALES:
            raise StudyDefinitionError(name, f"rating scale {self.rating_scale!r} is not one of "
                                             f"{', '.join(RATING_SCALES)}")
        self.washout_days = 0.0 if self.washout_days is None else float(self.washout_days)
        if not 0 <= self.washout_days <= 365:
            raise StudyDefinitionError(name, "the washout must be between 0 and 365 days")
        unlabeled = [c for c in self.cases if c.label is None]
        if unlabeled:
            raise StudyDefinitionError(unlabeled[0].path, f"case {unlabeled[0].key!r} has no disease label: a "
                                                          "diagnosis study takes its truth from the case list")
        if len({c.label for c in self.cases}) < 2:
            raise StudyDefinitionError(name, "a diagnosis study needs diseased and non-diseased cases")

"""A demo study from images the project makes itself (core.phantom), ready to read.

Used by ``r2c-review demo`` and the GUI's first-run experience: no patient data and no
download needed. Candidates are the original, every generator variant with installed
weights, CLAHE and histogram equalization; two readers share an anchor set (so agreement
can be computed) and split the rest, with one hidden QC repeat each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from core.phantom import write_phantom_set
from core.study.definition import StudySpec, cases_from_folder, default_reader_names, parse_candidates
from core.study.manage import (
    create_study,
    fingerprint,
    installed_default_iterations,
    installed_generators,
    list_studies,
    load_study,
    pinned_sha256,
)
from core.study.render import precompute as precompute_study
from core.study.store import APP_NAME, Store, default_database_path, open_store

DEMO_NAME = "Demo study"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoStudy:
    """Where the demo study is, so that callers need not know the default-path rules."""

    name: str
    database: str  # the database's URL, password hidden (for messages)
    images: Path  # the folder of generated phantom films the cases come from


def default_demo_dir(store: Store) -> Path:
    """Beside a SQLite file ("r2c-demo" in its folder); the user data folder for the default file and servers."""
    path = store.sqlite_file
    if path is None or path.resolve() == default_database_path().expanduser().resolve():
        return Path(platformdirs.user_data_dir(APP_NAME)) / "demo"
    return path.resolve().parent / "r2c-demo"


def demo_spec(folder: Path, name: str = DEMO_NAME, cases: int = 12, readers: int = 2, seed: int = 2024) -> StudySpec:
    if not any(folder.glob("*.png")):
        write_phantom_set(folder, cases, seed=seed)
    generators = installed_generators()
    candidates = parse_candidates(["original", *generators, "clahe", "histeq"], installed_default_iterations())
    case_specs = cases_from_folder(folder)
    return StudySpec(name=name, cases=case_specs, candidates=candidates, readers=default_reader_names(readers),
                     design="anchor", anchor_cases=max(2, len(case_specs) // 3), qc_repeats=1, seed=seed,
                     show_label=True)


def create_demo_study(database: str | Path | Store | None = None, workdir: str | Path | None = None,
                      precompute: bool = True, progress: Progress | None = None,
                      cancelled: Callable[[], bool] | None = None, cases: int = 12) -> DemoStudy:
    """Create (or reuse an identical) demo study and precompute it; returns its name and where it is.

    ``workdir`` holds the generated images (default: ``default_demo_dir``). An existing study
    of the same name is reused when it was made from the same images and weights; otherwise
    the new one is named "Demo study (2)", "(3)", ...
    """
    store = database if isinstance(database, Store) else open_store(database)
    try:
        folder = (Path(workdir) if workdir else default_demo_dir(store)) / "phantoms"
        spec = demo_spec(folder, cases=cases)
        existing = {s.name for s in list_studies(store)}
        shas = {c.spec: pinned_sha256(c.variant_id, c.spec) for c in spec.candidates if c.kind == "generator"}
        wanted = fingerprint(spec, shas, None)
        name, n = DEMO_NAME, 1
        while name in existing and load_study(store, name).fingerprint != wanted:
            n += 1
            name = f"{DEMO_NAME} ({n})"
        spec.name = name
        if name not in existing:
            create_study(store, spec)
        if precompute:
            precompute_study(store, name, progress=progress, cancelled=cancelled)
        return DemoStudy(name, store.display_url, folder.resolve())
    finally:
        if not isinstance(database, Store):
            store.close()

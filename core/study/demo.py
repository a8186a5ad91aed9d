"""A demo study on real, openly licensed chest films (``resources/demo``), ready to read.

Used by ``r2c-review demo`` and the GUI's first-run experience: no download needed. The 12
films are CC BY 3.0 (``resources/demo/ATTRIBUTION.txt``); where they are absent (tests, a
trimmed install) the project draws phantom films itself (core.phantom). The first reader's
first cases are rendered before the rest, so reading can begin while the others are made.
Candidates are the original, every generator variant with installed weights, CLAHE and
histogram equalization; two readers share an anchor set (so agreement can be computed) and
split the rest, with one hidden QC repeat each. The demo study is deliberately open (no
reader PINs, no administrator password: ``core.study.credentials``) so that it reads in one
click; the demo window says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from sqlalchemy import select

from core import variants
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
from core.study.render import Renderer, RenditionCache
from core.study.store import APP_NAME, Assignment, Store, default_database_path, open_store

DEMO_NAME = "Demo study"
Progress = Callable[[int, int], None]
FIRST_CASES = 3  # the first reader's cases rendered before all others
REST_CHUNK = 4  # then cases in batches (models run batched), cancellable between them


@dataclass(frozen=True)
class DemoStudy:
    """Where the demo study is, so that callers need not know the default-path rules."""

    name: str
    database: str  # the database's URL, password hidden (for messages)
    images: Path  # the folder of films the cases come from (resources/demo, or generated phantoms)


def demo_films() -> Path | None:
    """The shipped real films, or None where they are absent (read at call time: tests point RESOURCES away)."""
    folder = variants.RESOURCES / "demo"
    return folder if any(folder.glob("*.png")) else None


def demo_credit(images: Path) -> str | None:
    """The one-line credit of the films in ``images`` (the "Credit:" line of ATTRIBUTION.txt), if any.

    CC BY asks for attribution where the films are shown: the app puts this line on screen.
    """
    try:
        lines = (images / "ATTRIBUTION.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Credit:")), None)


def first_reader_cases(store: Store, study: str | int, count: int | None = FIRST_CASES) -> list[int]:
    """Case ids in the first reader's reading order (``count`` of them; None: all)."""
    info = load_study(store, study)
    with store.read() as s:
        rows = s.scalars(select(Assignment.case_id).where(Assignment.reader_id == info.readers[0].id)
                         .order_by(Assignment.seq)).all()
    return list(dict.fromkeys(rows))[:count]


def default_demo_dir(store: Store) -> Path:
    """Beside a SQLite file ("r2c-demo" in its folder); the user data folder for the default file and servers."""
    path = store.sqlite_file
    if path is None or path.resolve() == default_database_path().expanduser().resolve():
        return Path(platformdirs.user_data_dir(APP_NAME)) / "demo"
    return path.resolve().parent / "r2c-demo"


def _precompute_first_reader_first(store: Store, name: str, progress: Progress | None,
                                   cancelled: Callable[[], bool] | None, first_only: bool = False) -> None:
    """Render in the first reader's order (their first cases alone first), then the other readers' cases.

    The reader starts after the first chunk and the rest stays ahead of them; one renderer, so
    models load once. What is finished stays cached if cancelled (resumable, like ``precompute``).
    """
    info = load_study(store, name)
    renderer = Renderer(info, RenditionCache(store.cache_dir))
    by_id = {c.id: c for c in info.cases}
    order = first_reader_cases(store, name, count=None)
    ordered = [by_id[i] for i in order] + [c for c in info.cases if c.id not in set(order)]
    chunks = [ordered[:FIRST_CASES]]
    if not first_only:
        chunks += [ordered[i:i + REST_CHUNK] for i in range(FIRST_CASES, len(ordered), REST_CHUNK)]
    done, total = renderer.cached_count()
    if progress:
        progress(done, total)

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    for chunk in chunks:
        if cancelled and cancelled():
            return
        renderer.render(chunk, progress=step)


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
                      cancelled: Callable[[], bool] | None = None, cases: int = 12,
                      first_only: bool = False) -> DemoStudy:
    """Create (or reuse an identical) demo study and precompute it; returns its name and where it is.

    The cases are the shipped real films when present; otherwise ``cases`` phantoms drawn into
    ``workdir`` (default: ``default_demo_dir``). The first reader's first cases are rendered
    first, then the rest (``cancelled`` is polled between the two and between chunks);
    ``first_only`` stops after the first ones, so a reader can begin while a worker makes the
    rest. An existing study of the same name is reused when it was made from the same images
    and weights; otherwise the new one is named "Demo study (2)", "(3)", ...
    """
    store = database if isinstance(database, Store) else open_store(database)
    try:
        folder = demo_films() or (Path(workdir) if workdir else default_demo_dir(store)) / "phantoms"
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
            _precompute_first_reader_first(store, name, progress, cancelled, first_only)
        return DemoStudy(name, store.display_url, folder.resolve())
    finally:
        if not isinstance(database, Store):
            store.close()

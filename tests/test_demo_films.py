"""The demo on real films: only CC BY films shipped, each attributed; the first reader's first cases come first."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
FILMS = REPO / "resources" / "demo"


def _films() -> list[Path]:
    return sorted(FILMS.glob("*.png"))


def test_shipped_films_are_small_gray_and_attributed() -> None:
    films = _films()
    assert 1 <= len(films) <= 12
    attribution = (FILMS / "ATTRIBUTION.txt").read_text(encoding="utf-8")
    for key in ("CC BY 3.0", "Hannover Medical School", "ml-workgroup/covid-19-image-repository", "Changes:"):
        assert key in attribution
    for film in films:
        image = cv2.imread(str(film), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.ndim == 2 and image.dtype == "uint8", film.name
        assert max(image.shape) <= 512 and film.stat().st_size < 300_000, film.name
        assert film.name in attribution, f"{film.name} has no line in ATTRIBUTION.txt"
    assert sum(f.stat().st_size for f in films) < 3_000_000


def test_every_shipped_film_is_cc_by_in_the_source_labels(labeled_dir: Path) -> None:
    with open(labeled_dir / "labels.csv", newline="", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    for film in _films():
        row = rows[film.name]
        assert row["license_class"].startswith("CC-BY (") and "NC" not in row["license"], film.name
        assert row["source_path"] in (FILMS / "ATTRIBUTION.txt").read_text(encoding="utf-8")


def test_demo_uses_real_films_and_renders_the_first_readers_first_cases_first(study_env, monkeypatch) -> None:
    from core.study import load_study, open_store, rendition_status
    from core.study.demo import FIRST_CASES, create_demo_study, first_reader_cases
    from core.study.render import Renderer, RenditionCache

    resources = study_env.tmp / "resources"
    shutil.copytree(FILMS, resources / "demo")
    monkeypatch.setattr("core.variants.RESOURCES", resources)
    db = study_env.tmp / "demo.db"
    seen: list[tuple[int, int]] = []
    demo = create_demo_study(db, study_env.tmp / "work", progress=lambda d, t: seen.append((d, t)), first_only=True)
    assert demo.images == resources / "demo"
    assert not (study_env.tmp / "work" / "phantoms").exists()  # no phantoms drawn when the films are there
    with open_store(db) as store:
        info = load_study(store, demo.name)
        assert sorted(c.path.name for c in info.cases) == [f.name for f in _films()]
        assert {c.label for c in info.cases} == {"COVID-19", "control"}
        first = first_reader_cases(store, demo.name)
        assert len(first) == FIRST_CASES
        renderer = Renderer(info, RenditionCache(store.cache_dir))
        cached = {c.id for c in info.cases if all(renderer.cache.has(renderer.key(c, k)) for k in info.candidates)}
        untouched = {c.id for c in info.cases if not any(renderer.cache.has(renderer.key(c, k))
                                                         for k in info.candidates)}
        assert cached == set(first) and untouched == {c.id for c in info.cases} - set(first)
        assert seen[-1] == (FIRST_CASES * len(info.candidates), len(info.cases) * len(info.candidates))
    # the second pass (the background worker's) reuses the study and renders the rest
    again = create_demo_study(db, study_env.tmp / "work", first_only=False)
    assert again.name == demo.name
    with open_store(db) as store:
        done, total = rendition_status(store, demo.name)
        assert done == total


def test_without_shipped_films_the_demo_draws_phantoms(study_env) -> None:
    from core.study.demo import create_demo_study, demo_films

    assert demo_films() is None  # study_env points RESOURCES at an empty folder
    demo = create_demo_study(study_env.tmp / "demo.db", study_env.tmp / "work", precompute=False, cases=2)
    assert demo.images == (study_env.tmp / "work" / "phantoms").resolve()
    assert len(list(demo.images.glob("*.png"))) == 2

"""Helpers for the study tests: phantom cases, stand-in model files, an X-ray loader stand-in."""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.models import build_generator
from core.phantom import make_phantom, to_uint8
from core.weights.model_file import Manifest, save_model

POSTGRES_ENV = "R2C_TEST_POSTGRES_URL"


def imaging_available() -> bool:
    try:
        return hasattr(importlib.import_module("core.imaging"), "load_xray")
    except ImportError:
        return False


def cv2_display(path: str | Path) -> np.ndarray:
    """Stand-in for core.imaging.load_xray(path).display on 8/16-bit PNGs (used until core.imaging lands)."""
    from core.errors import ImageLoadError

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageLoadError(path, "cannot decode image")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return (image.astype(np.float32) / scale).astype(np.float32)


def use_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the study engine's image loading through core.imaging, or cv2 while it is absent."""
    if not imaging_available():
        monkeypatch.setattr("core.study.images.load_display", cv2_display)


def write_cases(folder: Path, count: int, size: tuple[int, int] = (160, 128), seed: int = 0) -> list[Path]:
    """Small phantom PNGs named covid_NNNN / control_NNNN (labels inferred from names)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        label = "covid" if i % 2 else "control"
        path = folder / f"{label}_{i + 1:04d}.png"
        cv2.imwrite(str(path), to_uint8(make_phantom(seed * 1000 + i, size, quality=0.3 + 0.6 * (i % 3) / 2,
                                                     disease=bool(i % 2))))
        paths.append(path)
    return paths


def install_generator(models: Path, variant: str = "r2c-q1", seed: int = 0) -> Path:
    """A real (randomly initialised) compact Q=1 generator file standing in for trained weights."""
    import torch

    torch.manual_seed(seed)
    path = models / f"{variant}.safetensors"
    save_model(path, build_generator("operational", 1).state_dict(),
               Manifest(variant_id=variant, display_name="R2C-GAN (Q=1)", kind="generator",
                        architecture="operational", q=1, default_iterations=3))
    return path


def install_segmenter(models: Path) -> Path:
    import torch

    from core.models.segmenter import build_segmenter

    torch.manual_seed(0)
    path = models / "lung-unet-densenet121.safetensors"
    save_model(path, build_segmenter().state_dict(),
               Manifest(variant_id="lung-unet-densenet121", display_name="Lung U-Net", kind="segmenter",
                        architecture="unet-densenet121", input_size=256))
    return path


def postgres_url() -> str:
    """The test server's URL, or skip (fail under CI, which always provides one)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        reason = f"{POSTGRES_ENV} is not set (run: eval \"$(.ci/postgres.sh)\")"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}, but CI must test PostgreSQL")
        pytest.skip(reason)
    return url


class PostgresDatabase:
    """A throw-away database on the test server, dropped afterwards."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.admin_url = make_url(url)
        self.name = f"r2c_t_{uuid.uuid4().hex[:12]}"
        self.url = self.admin_url.set(database=self.name).render_as_string(hide_password=False)
        self._admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.dispose()


def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Isolated model folder (no bundled weights), image loading, and a tmp workspace (the study_env fixture)."""
    from types import SimpleNamespace

    use_loader(monkeypatch)
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("R2C_MODELS_DIR", str(models))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-bundled-resources")
    return SimpleNamespace(tmp=tmp_path, models=models)


def make_study(store, cases: Path | list, name: str = "S", candidates: str = "clahe,histeq", readers: int = 2,
               **settings):
    """Create a study from a folder/CSV (or CaseSpec list) with small defaults; returns its StudyInfo."""
    from core.study.definition import StudySpec, default_reader_names, parse_candidates, read_cases
    from core.study.manage import create_study, installed_default_iterations

    case_specs = read_cases(cases) if isinstance(cases, Path) else cases
    spec = StudySpec(name=name, cases=case_specs, candidates=parse_candidates(candidates,
                                                                               installed_default_iterations()),
                     readers=default_reader_names(readers), **settings)
    return create_study(store, spec)

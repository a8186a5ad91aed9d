"""Shared fixtures.

Tests that need the public reference data read it from ``../shared`` (never copied into
the repo). Locally they skip with a reason when it is absent; under CI (``CI=true``) its
absence is an error, because CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Qt tests run headless unless a display is explicitly provided.
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2C_SHARED_DIR", REPO.parent / "shared")).resolve()
ARTIFACTS = REPO / "tests" / "_artifacts"


def require_shared(*parts: str) -> Path:
    """Path under ../shared, or skip (fail under CI) when it is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"reference data {path} is not available"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}, but CI must always have it")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return require_shared("reference", "r2c-gan")


@pytest.fixture(scope="session")
def dicom_dir() -> Path:
    return require_shared("data", "dicom")


@pytest.fixture(scope="session")
def labeled_dir() -> Path:
    return require_shared("data", "cxr_labeled")


@pytest.fixture(scope="session")
def lung_masks_dir() -> Path:
    return require_shared("data", "lung_masks")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files meant to be looked at (screenshots, sample images)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _restore_automatic_gc():
    """A main window hands cycle collection to its GUI-thread timer (app/gui_gc.py); give it back to
    Python after each test so non-Qt tests run with the normal collector."""
    yield
    import gc

    gc.enable()


@pytest.fixture
def study_env(tmp_path, monkeypatch):
    """A private data folder, models folder and image loader for one study test (``make_env``)."""
    from tests.study_helpers import make_env

    return make_env(tmp_path, monkeypatch)


@pytest.fixture
def store(study_env):
    """An open SQLite study store in the test's folder."""
    from core.study.store import open_store

    with open_store(study_env.tmp / "studies.db") as s:
        yield s

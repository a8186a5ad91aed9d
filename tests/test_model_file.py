"""Model files: safetensors + manifest; corrupt, mismatched or tampered files are caught."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from core.errors import WeightsError
from core.models import build_generator
from core.restore import load_generator
from core.weights.model_file import Manifest, load_into, load_state, read_manifest, save_model
from tests.engine_helpers import make_generator_file


def test_round_trip_keeps_weights_and_manifest(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path, "r2c-q3")
    manifest = read_manifest(path)
    assert (manifest.variant_id, manifest.architecture, manifest.q, manifest.default_iterations) == \
        ("r2c-q3", "operational", 3, 3)
    assert manifest.sha256 and len(manifest.sha256) == 64
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] == manifest.sha256
    state, _ = load_state(path)
    torch.manual_seed(0)
    fresh = build_generator("operational", 3).state_dict()
    assert state.keys() == fresh.keys()
    for k in state:
        torch.testing.assert_close(state[k], fresh[k], rtol=0, atol=0)


def test_half_precision_file_loads_as_float32(tmp_path: Path) -> None:
    model = build_generator("operational", 1)
    save_model(tmp_path / "h.safetensors", model.state_dict(),
               Manifest("r2c-q1", "Q1", "generator", "operational", q=1), half=True)
    state, manifest = load_state(tmp_path / "h.safetensors")
    assert manifest.dtype == "float16"
    assert all(v.dtype == torch.float32 for v in state.values())
    assert (tmp_path / "h.safetensors").stat().st_size < 0.6 * 4 * sum(v.numel() for v in state.values())


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # flip bits inside a tensor
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match its manifest"):
        read_manifest(path)


def test_truncated_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        read_manifest(path)
    pickled = tmp_path / "model.safetensors"
    pickled.write_bytes(pickle.dumps({"weight": [1, 2, 3]}))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        read_manifest(pickled)
    with pytest.raises(WeightsError, match="must end in .safetensors"):
        save_model(tmp_path / "model.pt", {}, Manifest("x", "x", "generator", "operational", q=1))


def test_sidecar_that_disagrees_with_weights_is_refused(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path, "r2c-q1")
    side = path.with_suffix(".json")
    data = json.loads(side.read_text())
    data["q"] = 5
    side.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="q=5"):
        read_manifest(path)


def test_weights_for_another_architecture_are_refused(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path, "r2c-q1")
    state, _ = load_state(path)
    with pytest.raises(WeightsError, match="do not fit the architecture"):
        load_into(build_generator("operational", 3), state, path)
    with pytest.raises(WeightsError, match="not R2C-GAN \\(Q=3\\)|not R2C-GAN"):
        load_generator("r2c-q3", weights=path)

"""Model files: safetensors + manifest; corrupt, mismatched or tampered files are caught."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest
import torch

from core.errors import R2CError, WeightsError
from core.models import build_generator
from core.restore import load_generator
from core.weights.model_file import Manifest, load_into, load_state, read_manifest, save_model
from tests.engine_helpers import make_generator_file, run_where_writes_fail


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


_MODEL_WRITE_FAILS = """
import sys
from pathlib import Path
from core.errors import WeightsError
from core.models import build_generator
from core.weights.model_file import load_state, read_manifest, save_model
from tests.engine_helpers import make_generator_file

folder = Path(sys.argv[1])
path = make_generator_file(folder, "r2c-q3")
before = path.read_bytes(), path.with_suffix(".json").read_bytes()
limit_writes()
try:
    save_model(path, build_generator("operational", 3).state_dict(), read_manifest(path))
except WeightsError as exc:
    print(exc.one_line())
print((path.read_bytes(), path.with_suffix(".json").read_bytes()) == before)
print(sorted(p.name for p in folder.iterdir()))
"""


def test_a_model_file_that_cannot_be_written_leaves_the_installed_one_intact(tmp_path: Path) -> None:
    message, unchanged, left = run_where_writes_fail(_MODEL_WRITE_FAILS, str(tmp_path))
    assert message == f"{tmp_path / 'r2c-q3.safetensors'}: cannot write the file (File too large)"
    assert unchanged == "True"
    assert left == "['r2c-q3.json', 'r2c-q3.safetensors']"  # no partial .tmp file holds the space


def test_a_manifest_that_cannot_be_written_leaves_the_installed_pair_as_it_was(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path, "r2c-q3")
    before = path.read_bytes(), path.with_suffix(".json").read_bytes()
    (tmp_path / "r2c-q3.json.tmp").mkdir()  # the OS refuses to write the manifest there
    with pytest.raises(WeightsError, match=r"r2c-q3\.json: cannot write the manifest \(Is a directory\)"):
        save_model(path, build_generator("operational", 3).state_dict(), read_manifest(path))
    assert (path.read_bytes(), path.with_suffix(".json").read_bytes()) == before
    assert read_manifest(path).variant_id == "r2c-q3"  # still verifies: weights and sha256 agree
    assert not (tmp_path / "r2c-q3.safetensors.tmp").exists()


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


# -- verified, not trusted (issue 12) ---------------------------------------------------------------


def _rewrite_with_sidecar_hash(path: Path, state: dict, manifest: Manifest) -> None:
    """What an attacker (or a broken tool) does: new tensors, and the sidecar's sha256 recomputed."""
    save_model(path, state, dataclasses.replace(manifest, sha256=None))


def test_model_without_sidecar_is_refused_unless_unsigned_models_are_allowed(tmp_path: Path, monkeypatch) -> None:
    path = make_generator_file(tmp_path)
    path.with_suffix(".json").unlink()
    monkeypatch.delenv("R2C_ALLOW_UNSIGNED_MODELS", raising=False)
    with pytest.raises(WeightsError, match="unsigned model files are refused"):
        read_manifest(path)
    monkeypatch.setenv("R2C_ALLOW_UNSIGNED_MODELS", "1")
    assert read_manifest(path).kind == "generator"


def test_sidecar_with_null_sha256_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = make_generator_file(tmp_path)
    side = path.with_suffix(".json")
    data = json.loads(side.read_text())
    data["sha256"] = None
    side.write_text(json.dumps(data))
    monkeypatch.delenv("R2C_ALLOW_UNSIGNED_MODELS", raising=False)
    with pytest.raises(WeightsError, match="gives no sha256"):
        read_manifest(path)
    data["sha256"] = "abc"
    side.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="not a sha256 digest"):
        read_manifest(path)


def test_nan_weights_with_a_recomputed_hash_are_refused(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path)
    state, manifest = load_state(path)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = torch.full_like(state[key], float("nan"))
    _rewrite_with_sidecar_hash(path, state, manifest)
    assert read_manifest(path).sha256  # the hash matches: only the tensor check can tell
    with pytest.raises(WeightsError, match=f"tensor {key} holds NaN"):
        load_state(path)


def test_weights_of_another_dtype_than_the_manifest_are_refused(tmp_path: Path) -> None:
    path = make_generator_file(tmp_path)
    state, manifest = load_state(path)
    save_model(path, state, manifest, half=True)  # float16 tensors...
    side = path.with_suffix(".json")
    data = json.loads(side.read_text())
    data["dtype"] = "float32"  # ...and a manifest that claims float32
    side.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="the manifest says float32"):
        load_state(path)


def test_restore_with_unsigned_weights_fails_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from core.cli.main import main

    path = make_generator_file(tmp_path)
    path.with_suffix(".json").unlink()
    monkeypatch.delenv("R2C_ALLOW_UNSIGNED_MODELS", raising=False)
    image = tmp_path / "x.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), (np.arange(64 * 64) % 255).reshape(64, 64).astype(np.uint8))
    assert main(["restore", str(image), "--weights", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unsigned model files are refused" in err and "Traceback" not in err
    monkeypatch.setenv("R2C_ALLOW_UNSIGNED_MODELS", "")
    assert main(["--allow-unsigned-models", "restore", str(image), "--weights", str(path),
                 "--out", str(tmp_path / "out")]) == 0


def test_models_found_through_r2c_models_dir_follow_the_same_rules(tmp_path: Path, monkeypatch) -> None:
    from core.study.manage import pinned_sha256

    models = tmp_path / "models"
    models.mkdir()
    path = make_generator_file(models, "r2c-q1")
    monkeypatch.setenv("R2C_MODELS_DIR", str(models))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "no-bundled-resources")
    monkeypatch.delenv("R2C_ALLOW_UNSIGNED_MODELS", raising=False)
    assert load_generator("r2c-q1").manifest.sha256
    state, manifest = load_state(path)
    state[next(iter(state))] = torch.full_like(state[next(iter(state))], float("inf"))
    _rewrite_with_sidecar_hash(path, state, manifest)
    with pytest.raises(WeightsError, match="NaN or infinite"):
        load_generator("r2c-q1")
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="unsigned model files are refused"):
        load_generator("r2c-q1")
    with pytest.raises(R2CError, match="unsigned model files are refused"):
        pinned_sha256("r2c-q1", "study")

"""Restoration: preprocessing, iterations, batching, and import-tf -> safetensors -> restore round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli.main import main as cli
from core.errors import WeightsError
from core.imaging import load_xray
from core.models import build_generator
from core.restore import Restorer, to_display, to_model_input
from core.weights.tf_import import import_tf_checkpoint
from tests.engine_helpers import chest_like, make_generator_file


def test_model_input_is_three_channel_256_in_minus_one_to_one() -> None:
    x = to_model_input(chest_like(600, 500))
    assert x.shape == (3, 256, 256) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    assert np.array_equal(x[0], x[2])
    flat = np.full((256, 256), 0.25, np.float32)
    np.testing.assert_allclose(to_model_input(flat), -0.5)
    np.testing.assert_allclose(to_display(torch.from_numpy(to_model_input(flat))), 0.25, atol=1e-6)


def test_iterations_feed_each_output_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path))
    make_generator_file(tmp_path, "r2c-q1", seed=3)
    restorer = Restorer("cpu")
    image = chest_like()
    res = restorer.restore(image, "r2c-q1")
    assert res.iterations == 3  # manifest default for compact models
    g = restorer.generator("r2c-q1").model
    with torch.no_grad():
        x = torch.from_numpy(to_model_input(image))[None]
        for k in range(3):
            x, p = g(x)
            np.testing.assert_allclose(res.images[k], to_display(x[0]), atol=1e-6)
            np.testing.assert_allclose(res.probs[k], p[0].numpy(), atol=1e-6)
    assert restorer.restore(image, "r2c-q1", iterations=5).iterations == 5
    with pytest.raises(WeightsError, match="iterations"):
        restorer.restore(image, "r2c-q1", iterations=0)


def test_batches_give_the_same_result_as_single_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path))
    make_generator_file(tmp_path, "r2c-cnn-light")
    restorer = Restorer("cpu")
    images = [chest_like(seed=i) for i in range(5)]
    calls: list[tuple[int, int]] = []
    batched = restorer.restore_many(images, "r2c-cnn-light", 2, batch_size=2,
                                    progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    for img, res in zip(images, batched, strict=True):
        single = restorer.restore(img, "r2c-cnn-light", 2)
        np.testing.assert_allclose(single.final, res.final, atol=1e-5)


def test_missing_weights_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "none")
    with pytest.raises(WeightsError, match="no trained weights installed for r2c-q5"):
        Restorer("cpu").restore(chest_like(), "r2c-q5")
    with pytest.raises(WeightsError, match="unknown variant"):
        Restorer("cpu").restore(chest_like(), "r2c-q7")


def test_import_tf_then_restore_matches_the_reference_model(reference_dir: Path, tmp_path: Path,
                                                            dicom_dir: Path) -> None:
    out = tmp_path / "q3.safetensors"
    assert cli(["import-tf", str(reference_dir / "checkpoints" / "operational_q3"), "--arch", "operational",
                "--q", "3", "--out", str(out)]) == 0
    xray = load_xray(dicom_dir / "fodicom_CR-MONO1-10-chest.dcm")
    res = Restorer("cpu").restore(xray.display, weights=out)
    assert res.variant_id == "r2c-q3" and res.iterations == 3
    reference = build_generator("operational", 3)
    reference.load_state_dict(import_tf_checkpoint(reference_dir / "checkpoints" / "operational_q3",
                                                   "operational", 3))
    with torch.no_grad():
        x = torch.from_numpy(to_model_input(xray.display))[None]
        for _ in range(3):
            x, _ = reference.eval()(x)
    np.testing.assert_allclose(res.final, to_display(x[0]), atol=1e-5)

    # and through the command line, writing every pass and the class probabilities
    outdir = tmp_path / "restored"
    assert cli(["restore", str(dicom_dir / "fodicom_CR-MONO1-10-chest.dcm"), "--weights", str(out),
                "--out", str(outdir), "--all-iterations", "--original-size"]) == 0
    written = sorted(p.name for p in outdir.glob("*.png"))
    assert written == [f"fodicom_CR-MONO1-10-chest_r2c-q3_x{i}.png" for i in (1, 2, 3)]
    assert load_xray(outdir / written[-1]).size == xray.size
    import csv

    with open(outdir / "classification.csv", newline="") as f:
        row = next(csv.DictReader(f))
    # an imported checkpoint was never measured on other hospitals: the number is withheld, and says why
    assert row["p_covid_pass1"] == "" and row["out_of_source_auc"] == ""
    assert "never measured" in row["note"] and "not for diagnosis" in row["note"]
    shown = tmp_path / "shown"
    assert cli(["restore", str(dicom_dir / "fodicom_CR-MONO1-10-chest.dcm"), "--weights", str(out),
                "--out", str(shown), "--show-unreliable-probability"]) == 0
    with open(shown / "classification.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert 0.0 <= float(row["p_covid_pass1"]) <= 1.0 and "shown on request" in row["note"]

"""pix2pix synthetic films: the model, resumable training, synthesis marked synthetic everywhere."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from core.cli.main import main
from core.errors import WeightsError
from core.models import build_generator
from core.models.pix2pix import ConditionalPatchDiscriminator, build_pix2pix_generator
from core.synthesize import Synthesizer, is_marked_synthetic
from core.train.cxr3 import patient_split, read_three_class
from core.train.pix2pix import Pix2PixConfig, run_pix2pix_training
from core.variants import RESOURCES
from tests.engine_helpers import chest_like

CPU = torch.device("cpu")


def test_generator_and_discriminator_shapes() -> None:
    G = build_pix2pix_generator(base=8)
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and float(y.detach().abs().max()) <= 1.0
    D = ConditionalPatchDiscriminator()
    logits = D(x, y)
    assert logits.shape == (2, 1, 26, 26)  # one logit per overlapping 70 x 70 patch
    # decoder: dropout on the first three blocks only, as in the paper
    drops = [any(isinstance(m, torch.nn.Dropout) for m in block) for block in G.up]
    assert drops == [True, True, True, False]


def test_task_gan_weights_still_load() -> None:
    """The U-Net shared with pix2pix keeps Task-GAN's state_dict names: the shipped file loads unchanged."""
    path = RESOURCES / "models" / "task-gan.safetensors"
    if not path.is_file():
        pytest.skip("no shipped Task-GAN weights")
    state = {k.removeprefix("net."): v for k, v in load_file(str(path)).items() if not k.startswith("tone.")}
    net_keys = set(build_generator("task-unet").state_dict())
    assert {k for k in state if k in net_keys} == net_keys


def _write_folder(folder: Path, rows: list[tuple[str, str, str]], seed: int) -> None:
    folder.mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "patient_key", "source_repo"])
        for i, (name, label, patient) in enumerate(rows):
            img = (chest_like(seed=seed + i) * 255).astype(np.uint8)
            if label in ("covid", "pneumonia"):
                img = cv2.GaussianBlur(img, (0, 0), 3)
            cv2.imwrite(str(folder / name), cv2.resize(img, (80, 96)))
            w.writerow([name, label, patient, "test"])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _write_folder(root / "cxr_labeled", [(f"control_{i}.png", "control", f"p{i}") for i in range(6)]
                  + [(f"covid_{i}.png", "covid", f"q{i}") for i in range(6)], 0)
    _write_folder(root / "cxr_nih", [(f"no_finding_{i}.png", "no_finding", f"n{i}") for i in range(4)]
                  + [(f"pneumonia_{i}.png", "pneumonia", f"n{i}") for i in range(4)], 100)
    return root


def small(**kw) -> Pix2PixConfig:
    return Pix2PixConfig(**({"size": 64, "base": 8, "epochs": 3, "checkpoint_every": 3, "test_fraction": 0.3} | kw))


def test_three_class_split_keeps_patients_apart(tiny_data: Path) -> None:
    films = read_three_class(tiny_data)
    assert {f.cls for f in films} == {"normal", "COVID-19", "pneumonia"}
    train, test = patient_split(films, 0.3, seed=0)
    assert train and test
    assert not {f.patient_key for f in train} & {f.patient_key for f in test}
    # patient n0 has a no-finding and a pneumonia film: both on the same side
    assert len({f in test for f in films if f.patient_key == "n0"}) == 1


def test_training_resumes_exactly_and_exports_a_synthesizer(tiny_data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = run_pix2pix_training(small(), tiny_data, tmp_path / "a", CPU, max_steps=6, progress=False,
                                     evaluate=False)
    run_pix2pix_training(small(), tiny_data, tmp_path / "b", CPU, max_steps=3, progress=False, evaluate=False)
    resumed = run_pix2pix_training(small(), tiny_data, tmp_path / "b", CPU, max_steps=3, progress=False)
    assert straight.step == resumed.step == 6
    for (k, a), b in zip(straight.G.state_dict().items(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    with open(tmp_path / "b" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(np.isfinite(float(r["loss_l1"])) for r in rows)
    metrics = json.loads((tmp_path / "b" / "evaluation.json").read_text())
    assert metrics["test_normal_films"] > 0 and metrics["step"] == 6
    synth = Synthesizer.load(tmp_path / "b" / "model" / "pix2pix-covid.safetensors", CPU)
    assert synth.manifest.kind == "synthesizer" and synth.size == 64
    assert synth.manifest.provenance["evaluation"]["step"] == 6
    out = synth.synthesize(chest_like(seed=3))
    assert out.shape == (64, 64) and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1
    assert np.array_equal(out, synth.synthesize(chest_like(seed=3)))  # deterministic at inference


def test_a_synthesizer_is_never_a_restoration_variant(tiny_data: Path, tmp_path: Path) -> None:
    from core.restore import load_generator

    run_pix2pix_training(small(), tiny_data, tmp_path / "r", CPU, max_steps=1, progress=False, evaluate=False)
    with pytest.raises(WeightsError, match="not an R2C-GAN generator"):
        load_generator(weights=tmp_path / "r" / "model" / "pix2pix-covid.safetensors", device=CPU)


def test_synthesize_cli_marks_every_output(tiny_data: Path, tmp_path: Path, capsys) -> None:
    assert main(["train-pix2pix", "--data", str(tiny_data), "--run", str(tmp_path / "run"), "--size", "64",
                 "--base", "8", "--epochs", "1", "--max-steps", "2", "--checkpoint-every", "2"]) == 0
    weights = tmp_path / "run" / "model" / "pix2pix-covid.safetensors"
    film = tiny_data / "cxr_labeled" / "control_0.png"
    assert not is_marked_synthetic(film)
    assert main(["synthesize", str(film), "--weights", str(weights), "--out", str(tmp_path / "png")]) == 0
    assert main(["synthesize", str(film), "--weights", str(weights), "--format", "dicom",
                 "--out", str(tmp_path / "dcm")]) == 0
    png = tmp_path / "png" / "control_0_SYNTHETIC-pix2pix.png"
    with Image.open(png) as im:
        assert im.info["Synthetic"] == "yes"
        assert "SYNTHETIC IMAGE - NOT A REAL RADIOGRAPH" in im.info["Description"]
        assert "control_0.png" in im.info["Description"]
        assert im.size == (64, 64) and im.mode == "L"
    dcm = tmp_path / "dcm" / "control_0_SYNTHETIC-pix2pix.dcm"
    ds = pydicom.dcmread(dcm)
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    for keyword in ("DerivationDescription", "ImageComments", "SeriesDescription"):
        assert "SYNTHETIC" in str(ds.get(keyword)), keyword
    assert ds.PatientID == "SYNTHETIC" and str(ds.PatientName) == "SYNTHETIC^IMAGE"
    assert ds.pixel_array.shape == (64, 64)
    assert is_marked_synthetic(png) and is_marked_synthetic(dcm)
    renamed = tmp_path / "renamed.png"  # a renamed synthetic PNG still says what it is
    renamed.write_bytes(png.read_bytes())
    assert is_marked_synthetic(renamed)
    assert "SYNTHETIC" in capsys.readouterr().out


def test_synthetic_dicom_never_takes_the_source_patient(dicom_dir: Path, tiny_data: Path, tmp_path: Path) -> None:
    run_pix2pix_training(small(), tiny_data, tmp_path / "r", CPU, max_steps=1, progress=False, evaluate=False)
    source = dicom_dir / "nhsx_nih_chestxray_DX_8bit.dcm"
    src = pydicom.dcmread(source, stop_before_pixels=True, force=True)
    assert main(["synthesize", str(source), "--weights", str(tmp_path / "r" / "model" / "pix2pix-covid.safetensors"),
                 "--format", "dicom", "--out", str(tmp_path / "o")]) == 0
    ds = pydicom.dcmread(tmp_path / "o" / f"{source.stem}_SYNTHETIC-pix2pix.dcm")
    assert ds.StudyInstanceUID != src.get("StudyInstanceUID")
    assert ds.PatientID == "SYNTHETIC" and ds.PatientID != src.get("PatientID")


def test_train_classifier_smoke_with_and_without_synthetic_films(tiny_data: Path, tmp_path: Path) -> None:
    """CI runs only this smoke test: two arms, a few steps of ResNet-18 on tiny films."""
    run_pix2pix_training(small(), tiny_data, tmp_path / "p", CPU, max_steps=1, progress=False, evaluate=False)
    weights = tmp_path / "p" / "model" / "pix2pix-covid.safetensors"
    assert main(["train-classifier", "--data", str(tiny_data), "--run", str(tmp_path / "c"), "--backbone", "resnet18",
                 "--epochs", "1", "--size", "64", "--batch-size", "4", "--test-fraction", "0.3",
                 "--weights", str(weights)]) == 0
    result = json.loads((tmp_path / "c" / "results.json").read_text())
    assert set(result["arms"]) == {"none", "balanced"}
    none, balanced = result["arms"]["none"], result["arms"]["balanced"]
    assert none["synthetic_films"] == 0
    counts = result["train_counts"]
    assert balanced["synthetic_films"] == max(counts.values()) - counts["COVID-19"]
    assert balanced["train_films"] == none["train_films"] + balanced["synthetic_films"]
    for arm in (none, balanced):
        test = arm["test"]
        assert 0 <= test["accuracy"] <= 1 and set(test["per_class"]) == {"normal", "COVID-19", "pneumonia"}
        assert sum(s["n"] for s in test["per_source"].values()) == test["n"]
    table = (tmp_path / "c" / "results.md").read_text()
    assert "| none | **accuracy** |" in table and "| balanced | COVID-19 |" in table and "resnet18" in table


def test_resnet50_backbone_is_built_without_downloading() -> None:
    from core.train.classifier import build_classifier

    model = build_classifier("resnet50")
    assert model.fc.out_features == 3 and model.fc.in_features == 2048


def test_publish_installs_float16_weights_with_figures(tiny_data: Path, tmp_path: Path) -> None:
    run_pix2pix_training(small(), tiny_data, tmp_path / "run", CPU, max_steps=2, progress=False, evaluate=False)
    out = tmp_path / "models"
    assert main(["publish-pix2pix", "--run", str(tmp_path / "run"), "--data", str(tiny_data),
                 "--out", str(out)]) == 0
    from core.weights.model_file import read_manifest, sha256_of

    path = out / "pix2pix-covid.safetensors"
    manifest = read_manifest(path)
    assert manifest.dtype == "float16" and manifest.sha256 == sha256_of(path)
    assert manifest.kind == "synthesizer" and manifest.provenance["step"] == 2
    assert manifest.provenance["evaluation"]["weights"] == "float16 (as shipped)"
    assert "research use" in manifest.provenance["licence"]
    assert (out / "pix2pix-montage.png").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["pix2pix-covid.json", "pix2pix-covid.safetensors",
                                                     "pix2pix-montage.png"]


def test_convert_keeps_a_renamed_synthetic_film_marked(tmp_path: Path) -> None:
    from core.exports.synthetic import write_synthetic_png

    src = tmp_path / "in" / "innocent_name.png"  # renamed: only its text chunk says synthetic
    write_synthetic_png(src, chest_like(224, 224, seed=1), "SYNTHETIC IMAGE - NOT A REAL RADIOGRAPH (test)")
    real = tmp_path / "in" / "real.png"
    cv2.imwrite(str(real), (chest_like(seed=2) * 255).astype(np.uint8))
    assert main(["convert", str(src), str(real), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "innocent_name_SYNTHETIC.png"
    assert is_marked_synthetic(out)
    with Image.open(out) as im:
        assert im.info["Synthetic"] == "yes"
    assert (tmp_path / "out" / "real.png").is_file() and not is_marked_synthetic(tmp_path / "out" / "real.png")


def test_shipped_synthesizer_is_verified_and_makes_224_px_films() -> None:
    """The bundled pix2pix synthesizer: sha256-verified float16, its card's facts in the manifest."""
    from core.weights.model_file import read_manifest

    path = RESOURCES / "models" / "pix2pix-covid.safetensors"
    manifest = read_manifest(path)
    assert manifest.kind == "synthesizer" and manifest.dtype == "float16" and manifest.input_size == 224
    prov = manifest.provenance
    assert prov["step"] > 0 and prov["training_seconds"] > 0 and "train-pix2pix" in prov["command"]
    assert prov["evaluation"]["test_normal_films"] > 0 and "reader studies" in prov["intended_use"]
    synth = Synthesizer.load(path, CPU)
    out = synth.synthesize(chest_like(seed=5))
    assert out.shape == (224, 224) and np.isfinite(out).all() and out.std() > 0.01
    assert (RESOURCES / "models" / "PIX2PIX.md").is_file()

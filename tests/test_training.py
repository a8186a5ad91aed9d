"""Training on tiny synthetic data: a step lowers the loss, resume equals an uninterrupted run,
domains are built reproducibly and disjoint by patient."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.train.data import LabeledImage, MaskPair, read_labeled_folder
from core.train.domains import build_domain_plan
from core.train.gan import GanConfig, GanData, GanTrainer
from core.train.seg import SegConfig, SegTrainer
from tests.engine_helpers import chest_like, run_where_writes_fail

CPU = torch.device("cpu")


def tiny_data(n: int = 4, size: int = 72) -> GanData:
    imgs = [cv2.resize(chest_like(seed=i), (size, size), interpolation=cv2.INTER_AREA) for i in range(n)]
    return GanData(imgs, [i % 2 for i in range(n)], [i % 2 == 0 for i in range(n)], imgs[::-1],
                   [(i + 1) % 2 for i in range(n)])


def tiny_config(arch: str, q: int | None, **kw) -> GanConfig:
    settings = dict(epochs=4, decay_epoch=2, load_size=72, crop_size=64, pool_size=3, checkpoint_every=10**6,
                    sample_every=0) | kw
    return GanConfig(arch=arch, q=q, **settings)


@pytest.mark.parametrize(("arch", "q"), [("operational", 1), ("operational", 3), ("operational", 5),
                                         ("convolutional-light", None), ("convolutional", None)])
def test_training_steps_lower_the_losses(tmp_path: Path, arch: str, q: int | None) -> None:
    """One step lowers L_G on its batch; a few steps on one batch lower the discriminators' loss.

    (A single step need not lower the deep CNN's discriminator loss: Adam's first update is a
    sign step of size lr on every one of its 2.8 M weights, which overshoots; it recovers within
    a few steps. That is the authors' optimiser setting, kept as is.)
    """
    trainer = GanTrainer(tiny_config(arch, q, pool_size=0), tiny_data(), tmp_path, CPU)
    A, B, la, lb, _ = trainer.batch(0)
    with torch.no_grad():
        g_before, _, A2B, B2A = trainer.generator_losses(A, B, la, lb)
        d_before = sum(trainer.discriminator_losses(A, B, B2A, A2B))
    trainer.train_step()  # trains on batch(0)
    with torch.no_grad():
        g_after, _, _, _ = trainer.generator_losses(A, B, la, lb)
    assert float(g_after) < float(g_before)
    for _ in range(4):
        trainer.step = 0  # the same batch again
        trainer.train_step()
    with torch.no_grad():
        _, _, A2B, B2A = trainer.generator_losses(A, B, la, lb)
        d_after = sum(trainer.discriminator_losses(A, B, B2A, A2B))
    assert float(d_after) < float(d_before)


def test_discriminator_order_can_differ_from_the_generators(tmp_path: Path) -> None:
    from core.models import build_discriminator

    def size(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    same = GanTrainer(tiny_config("operational", 5), tiny_data(), tmp_path / "a", CPU)
    lower = GanTrainer(tiny_config("operational", 5, disc_q=3), tiny_data(), tmp_path / "b", CPU)
    assert size(same.D_A) == size(build_discriminator("operational", 5))
    assert size(lower.D_A) == size(lower.D_B) == size(build_discriminator("operational", 3))
    assert size(lower.G_A2B) == size(same.G_A2B)


def test_learning_rate_is_constant_then_decays_linearly_to_zero(tmp_path: Path) -> None:
    trainer = GanTrainer(tiny_config("operational", 1), tiny_data(), tmp_path, CPU)
    per_epoch = trainer.steps_per_epoch
    assert per_epoch == 4
    assert trainer.lr_at(0) == trainer.lr_at(2 * per_epoch - 1) == 2e-4
    assert trainer.lr_at(3 * per_epoch) == pytest.approx(1e-4)
    assert trainer.lr_at(4 * per_epoch) == 0.0


def _all_state(trainer: GanTrainer) -> dict[str, torch.Tensor]:
    tensors, _ = trainer.state_tensors()
    return {k: v for k, v in tensors.items() if k != "torch_rng"}


def test_resume_gives_the_same_state_as_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = GanTrainer(tiny_config("operational", 1, seed=5), tiny_data(), tmp_path / "a", CPU)
    straight.fit(max_steps=6, progress=False)

    first = GanTrainer(tiny_config("operational", 1, seed=5), tiny_data(), tmp_path / "b", CPU)
    first.fit(max_steps=3, progress=False)
    first.save()
    resumed = GanTrainer(tiny_config("operational", 1, seed=5), tiny_data(), tmp_path / "b", CPU)
    assert resumed.resume() and resumed.step == 3
    resumed.fit(max_steps=3, progress=False)

    a, b = _all_state(straight), _all_state(resumed)
    assert a.keys() == b.keys() and any(k.startswith("opt_G/") for k in a) and "pool_A2B" in a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    with open(tmp_path / "b" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]


_CHECKPOINT_WRITE_FAILS = """
import sys
from pathlib import Path
import torch
from core.errors import TrainingError
from core.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

run = Path(sys.argv[1])
save_checkpoint(run, 1, {"w": torch.zeros(16)}, {"step": 1})
limit_writes()
try:
    save_checkpoint(run, 2, {"w": torch.zeros(1 << 20)}, {"step": 2})
except TrainingError as exc:
    print(exc.one_line())
kept = latest_checkpoint(run)
print(kept.name, load_checkpoint(kept)[1]["step"])
print(sorted(p.name for p in (run / "checkpoints").iterdir()))
"""


def test_a_checkpoint_that_cannot_be_written_is_a_clear_error_and_keeps_the_last_one(tmp_path: Path) -> None:
    message, kept, left = run_where_writes_fail(_CHECKPOINT_WRITE_FAILS, str(tmp_path / "run"))
    assert message.startswith(str(tmp_path / "run" / "checkpoints" / "ckpt-00000002") + ": cannot write the checkpoint")
    assert "File too large" in message and "training resumes from ckpt-00000001" in message
    assert kept == "ckpt-00000001 1"
    assert left == "['ckpt-00000001']"  # the half-written folder is gone


def test_domains_are_reproducible_and_disjoint_by_patient(tmp_path: Path) -> None:
    rows = []
    for i in range(40):
        img = chest_like(120, 100, seed=i)
        if i % 3 == 0:  # a third of the films are poor: noisy and low contrast
            img = np.clip((img - 0.5) * 0.4 + 0.5 + np.random.default_rng(i).normal(0, 0.08, img.shape), 0, 1)
        name = f"img_{i:02d}.png"
        cv2.imwrite(str(tmp_path / name), (img * 255).astype(np.uint8))
        rows.append({"file": name, "label": "covid" if i % 2 else "control", "patient_key": f"p{i // 2}",
                     "source_repo": "siteA" if i < 20 else "siteB"})
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    items = read_labeled_folder(tmp_path)
    plan = build_domain_plan(items, seed=1)
    again = build_domain_plan(items, seed=1)
    assert plan == again
    patient = {it.name: it.patient_key for it in items}

    def patients(names: list[str]) -> set[str]:
        return {patient[n] for n in names}

    assert not patients(plan.test) & patients(plan.train_poor + plan.train_degraded + plan.train_clean)
    assert not patients(plan.train_clean) & patients(plan.train_degraded)
    assert sorted(plan.train_poor + plan.train_degraded + plan.train_clean + plan.test) == sorted(patient)
    poor_in_a = [n for n in plan.train_poor if int(n[4:6]) % 3 == 0]
    assert len(poor_in_a) >= 0.8 * len([n for n in plan.train_poor + plan.train_degraded + plan.train_clean
                                        if int(n[4:6]) % 3 == 0])


def test_bad_labels_file_names_the_row(tmp_path: Path) -> None:
    from core.errors import TrainingError

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "labels.csv").write_text("file,label\na.png,pneumonia\n")
    with pytest.raises(TrainingError, match="row 2: unknown label 'pneumonia'"):
        read_labeled_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\nmissing.png,covid\n")
    with pytest.raises(TrainingError, match="missing.png not found"):
        read_labeled_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\na.png,\n")
    with pytest.raises(TrainingError, match="row 2: empty file or label"):
        read_labeled_folder(tmp_path)
    (tmp_path / "labels.csv").write_bytes(b"file,label\n\xff\xfe.png,covid\n")
    with pytest.raises(TrainingError, match="labels.csv: not a readable CSV table"):
        read_labeled_folder(tmp_path)


def test_every_training_path_reads_labels_through_one_table_reader(tmp_path: Path) -> None:
    """The COVID-19/control reader, the three-class reader and the head fitting's extra folders
    see the same rows; each maps the written label to its own classes and refuses what it cannot."""
    from core.errors import TrainingError
    from core.train.cxr3 import COVID19, NORMAL, PNEUMONIA, read_folder
    from core.train.data import UNLABELED

    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8), np.uint8))
    (tmp_path / "labels.csv").write_text("file,label,patient_key,source_repo\n"
                                         "a.png, COVID-19 ,p1,site\nb.png,no_finding,,\nc.png,Pneumonia,p3,site\n")
    items = read_labeled_folder(tmp_path, other_labels=True)
    assert [(it.label, it.raw_label) for it in items] == [(1, "covid-19"), (UNLABELED, "no_finding"),
                                                          (UNLABELED, "pneumonia")]
    assert [it.patient_key for it in items] == ["p1", "file:b.png", "p3"]
    assert [f.cls for f in read_folder(tmp_path)] == [COVID19, NORMAL, PNEUMONIA]
    with pytest.raises(TrainingError, match="row 3: unknown label 'no_finding'"):
        read_labeled_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\na.png,flu\n")
    with pytest.raises(TrainingError, match="row 2: label 'flu' is not normal, COVID-19 or pneumonia"):
        read_folder(tmp_path)


def _tiny_seg(tmp_path: Path) -> list[MaskPair]:
    pairs = []
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(4):
        img = chest_like(96, 96, seed=i)
        mask = (img < 0.3).astype(np.uint8) * 255
        cv2.imwrite(str(tmp_path / "images" / f"s_{i}.png"), (img * 255).astype(np.uint8))
        cv2.imwrite(str(tmp_path / "masks" / f"s_{i}.png"), mask)
        pairs.append(MaskPair(tmp_path / "images" / f"s_{i}.png", tmp_path / "masks" / f"s_{i}.png", "s"))
    return pairs


def test_segmenter_step_lowers_loss_and_resumes_exactly(tmp_path: Path) -> None:
    pairs = _tiny_seg(tmp_path)
    cfg = SegConfig(epochs=3, batch_size=2, size=64, checkpoint_every=10**6)
    trainer = SegTrainer(cfg, pairs, tmp_path / "run", CPU)
    x, y, w = trainer.batch(0)
    assert y.shape[1] == 1 and bool((w == 1).all())  # one standard channel, every pixel labelled

    def loss() -> float:
        trainer.model.eval()
        with torch.no_grad():
            logits = trainer.model(x)
            return float(trainer.dice(logits, y) + torch.nn.functional.binary_cross_entropy_with_logits(logits, y))

    before = loss()
    for _ in range(3):
        trainer.step = 0  # train on the same batch
        trainer.train_step()
    assert loss() < before

    straight = SegTrainer(cfg, pairs, tmp_path / "s", CPU)
    straight.fit(max_steps=4, progress=False)
    part = SegTrainer(cfg, pairs, tmp_path / "p", CPU)
    part.fit(max_steps=2, progress=False)
    part.save()
    resumed = SegTrainer(cfg, pairs, tmp_path / "p", CPU)
    assert resumed.resume() and resumed.step == 2
    resumed.fit(max_steps=2, progress=False)
    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)


def test_labeled_image_record_has_a_name() -> None:
    assert LabeledImage(Path("/x/covid_1.png"), 1, "p", "s").name == "covid_1.png"


def test_segmenter_fine_tunes_from_a_model_file_at_another_size(tmp_path: Path) -> None:
    from tests.engine_helpers import make_segmenter_file

    pairs = _tiny_seg(tmp_path)
    start = make_segmenter_file(tmp_path, seed=11)
    trainer = SegTrainer(SegConfig(epochs=1, batch_size=2, size=96, init_from=str(start)), pairs, tmp_path / "ft",
                         CPU)
    from core.weights.model_file import load_state

    state, _ = load_state(start)
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)
    x, _, _ = trainer.batch(0)
    assert x.shape[-1] == 96


def _tiny_labeled(folder: Path, n: int = 24) -> Path:
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        img = chest_like(96, 80, seed=100 + i)
        if i % 3 == 0:
            img = np.clip((img - 0.5) * 0.4 + 0.5 + np.random.default_rng(i).normal(0, 0.08, img.shape), 0, 1)
        name = f"img_{i:02d}.png"
        cv2.imwrite(str(folder / name), (img * 255).astype(np.uint8))
        rows.append({"file": name, "label": "covid" if i % 2 else "control", "patient_key": f"p{i}",
                     "source_repo": "siteA" if i < n // 2 else "siteB"})
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_train_then_publish_installs_evaluated_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The release path end to end: train (one step), train-seg, publish with --seg-run; the installed
    files load, carry their evaluation in the manifest, and the report files are written."""
    import json

    from core.cli.main import main as cli
    from core.restore import Restorer
    from core.segment import LungSegmenter
    from core.weights.model_file import read_manifest

    labeled = _tiny_labeled(tmp_path / "labeled")
    masks = tmp_path / "masks_root"
    masks.mkdir()
    _tiny_seg(masks)
    runs = tmp_path / "runs"
    assert cli(["train", "--arch", "convolutional-light", "--data", str(labeled), "--run", str(runs / "r2c-cnn-light"),
                "--epochs", "1", "--decay-epoch", "1", "--max-steps", "1", "--checkpoint-every", "1",
                "--sample-every", "0", "--device", "cpu"]) == 0
    from tests.engine_helpers import make_segmenter_file

    base = make_segmenter_file(tmp_path, seed=3)
    assert cli(["train-seg", "--data", str(masks), "--run", str(tmp_path / "seg-64"), "--epochs", "1",
                "--batch-size", "2", "--size", "64", "--init-from", str(base), "--device", "cpu"]) == 0
    out = tmp_path / "installed"
    fold = tmp_path / "fold-s"  # as `train-seg --leave-out s` leaves it (that path has its own test)
    fold.mkdir()
    (fold / "loso.json").write_text(json.dumps({"left_out": "s", "n": 4, "dice": 0.81, "dice_median": 0.83,
                                                "worst": [{"file": "s_1.png", "dice": 0.7}], "films": [],
                                                "steps": 9, "epochs": 1, "size": 64}))
    assert cli(["publish", "--runs", str(runs), "--labeled", str(labeled), "--masks", str(masks),
                "--seg-run", str(tmp_path / "seg-64"), "--seg-loso", str(fold), "--out", str(out),
                "--device", "cpu"]) == 0

    gen, seg = out / "r2c-cnn-light.safetensors", out / "lung-unet-densenet121.safetensors"
    assert sorted(p.name for p in out.glob("*.safetensors")) == sorted([gen.name, seg.name])
    manifest = read_manifest(gen)
    evaluation = manifest.provenance["evaluation"]
    assert set(evaluation["degraded"]["per_iteration"]) == {"0", "1", "2", "3"}
    assert 0 <= evaluation["classification"]["overall"]["accuracy"] <= 1
    seg_manifest = read_manifest(seg)
    assert seg_manifest.input_size == 64 and "dice" in json.dumps(seg_manifest.provenance["evaluation"])
    assert seg_manifest.provenance["fine_tuned_from"]["sha256"] == read_manifest(base).sha256
    report = json.loads((out / "evaluation.json").read_text())
    assert list(report["restoration"]) == ["r2c-cnn-light"] and report["segmentation"]["by_dataset"]["s"]["n"] >= 1
    text = (out / "EVALUATION.md").read_text()
    assert "## Restoration" in text and "## Lung segmentation" in text
    assert "| s | 4 | 0.8100 |" in text and "Mean over left-out sources: Dice 0.8100" in text
    assert seg_manifest.provenance["evaluation"]["leave_one_source_out"]["mean_dice"] == 0.81
    card = (out / "MODEL_CARD.md").read_text()
    assert "never trained on" in card and "mean Dice 0.8100 (s 0.810)" in card
    assert "r2c-cnn-light" in card and "then 1.0 epochs (of 1) at 64" in card

    image = chest_like(90, 70, seed=5)
    restored = Restorer(CPU).restore(image, weights=gen, iterations=2)
    assert restored.iterations == 2 and restored.final.shape == (256, 256)
    assert LungSegmenter(seg, CPU).segment(image).mask.shape == image.shape

    # replacing only the segmenter: the generator and its recorded figures stay byte for byte
    gen_bytes, gen_side = gen.read_bytes(), (out / "r2c-cnn-light.json").read_text()
    old_sha = seg_manifest.sha256
    assert cli(["train-seg", "--data", str(masks), "--run", str(tmp_path / "seg-64b"), "--epochs", "1",
                "--batch-size", "2", "--size", "64", "--seed", "7", "--init-from", str(base), "--device", "cpu"]) == 0
    assert cli(["publish", "--segmenter-only", "--seg-run", str(tmp_path / "seg-64b"), "--masks", str(masks),
                "--out", str(out), "--device", "cpu"]) == 0
    assert gen.read_bytes() == gen_bytes and (out / "r2c-cnn-light.json").read_text() == gen_side
    new_manifest = read_manifest(seg)
    assert new_manifest.sha256 != old_sha
    after = json.loads((out / "evaluation.json").read_text())
    assert after["restoration"] == report["restoration"]
    assert after["segmentation"]["model_sha256"] == new_manifest.sha256
    assert new_manifest.provenance["evaluation"]["model_sha256"] == new_manifest.sha256
    assert "leave_one_source_out" not in after["segmentation"]  # the folds were of the replaced recipe
    assert "## Restoration" in (out / "EVALUATION.md").read_text()
    with pytest.raises(SystemExit, match="give --seg-run and --masks"):
        cli(["publish", "--segmenter-only", "--masks", str(masks), "--out", str(out)])
    assert cli(["publish", "--segmenter-only", "--seg-run", str(tmp_path / "seg-64b"), "--masks", str(masks),
                "--out", str(tmp_path / "empty"), "--device", "cpu"]) == 2
    assert "publish all models once" in capsys.readouterr().err
    # a failure half way (here: a masks folder without masks/) leaves the installed segmenter as it was
    shipped = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    (tmp_path / "no-masks" / "images").mkdir(parents=True)
    assert cli(["publish", "--segmenter-only", "--seg-run", str(tmp_path / "seg-64"), "--masks",
                str(tmp_path / "no-masks"), "--out", str(out), "--device", "cpu"]) == 2
    assert "expected images/ and masks/" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == shipped
    assert not list(out.glob(".segmenter-*"))
    # a leave-one-source-out fold never saw one source: it is a figure, not a file to ship
    two_sources = tmp_path / "two-sources"
    shutil.copytree(masks, two_sources)
    for kind in ("images", "masks"):
        for f in list((two_sources / kind).glob("s_*.png")):
            shutil.copy(f, f.with_name("t" + f.name[1:]))
    fold_run = tmp_path / "fold-run"
    assert cli(["train-seg", "--data", str(two_sources), "--run", str(fold_run), "--leave-out", "s", "--epochs", "1",
                "--batch-size", "2", "--size", "64", "--init-from", str(base), "--device", "cpu"]) == 0
    assert cli(["publish", "--segmenter-only", "--seg-run", str(fold_run), "--masks", str(masks),
                "--out", str(out), "--device", "cpu"]) == 2
    assert "left the s films out of training" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == shipped
    # the full publish refuses it before it installs any generator
    assert cli(["publish", "--runs", str(runs), "--labeled", str(labeled), "--masks", str(masks),
                "--seg-run", str(fold_run), "--out", str(out), "--device", "cpu"]) == 2
    assert "left the s films out of training" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == shipped


def test_leave_one_source_out_trains_without_the_source_and_measures_all_of_it(tmp_path: Path) -> None:
    import json

    from core.errors import TrainingError
    from core.train.seg import run_seg_training
    from tests.engine_helpers import make_segmenter_file

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for source in ("a", "b"):
        for i in range(3):
            img = chest_like(96, 96, seed=i + (10 if source == "b" else 0))
            cv2.imwrite(str(tmp_path / "images" / f"{source}_{i}.png"), (img * 255).astype(np.uint8))
            cv2.imwrite(str(tmp_path / "masks" / f"{source}_{i}.png"), (img < 0.3).astype(np.uint8) * 255)
    base = make_segmenter_file(tmp_path, seed=3)
    cfg = SegConfig(epochs=1, batch_size=2, size=64, leave_out="b", init_from=str(base))
    run_seg_training(cfg, tmp_path, tmp_path / "run", CPU, progress=False)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert sorted(split["train"]) == ["a_0.png", "a_1.png", "a_2.png"]
    loso = json.loads((tmp_path / "run" / "loso.json").read_text())
    assert loso["left_out"] == "b" and loso["n"] == 3
    assert sorted(f["file"] for f in loso["films"]) == ["b_0.png", "b_1.png", "b_2.png"]
    assert 0.0 <= loso["dice"] <= 1.0 and loso["worst"][0]["dice"] == min(f["dice"] for f in loso["films"])
    with pytest.raises(TrainingError, match="no source 'c' to leave out"):
        run_seg_training(SegConfig(epochs=1, size=64, leave_out="c"), tmp_path, tmp_path / "run2", CPU, progress=False)

    # the other fold, then the summary publish puts into the segmenter's record and EVALUATION.md
    from core.train.report import loso_markdown
    from core.train.seg import loso_summary

    run_seg_training(SegConfig(epochs=1, batch_size=2, size=64, leave_out="a", init_from=str(base)), tmp_path,
                     tmp_path / "run-a", CPU, progress=False)
    summary = loso_summary([tmp_path / "run", tmp_path / "run-a"])
    dices = [json.loads((tmp_path / r / "loso.json").read_text())["dice"] for r in ("run", "run-a")]
    assert [f["left_out"] for f in summary["folds"]] == ["b", "a"]
    assert summary["mean_dice"] == pytest.approx(np.mean(dices), abs=1e-4)
    text = "\n".join(loso_markdown(summary))
    assert "| b | 3 |" in text and "| a | 3 |" in text and f"{summary['mean_dice']:.4f}" in text
    assert loso["flip_average"] is True and all(f["flip_average"] for f in summary["folds"])
    assert text.count("measured mirror-averaged") == 2  # measured as the app segments
    with pytest.raises(TrainingError, match="no leave-one-source-out result"):
        loso_summary([tmp_path / "run", tmp_path / "run2"])  # started with an unknown source: no result
    with pytest.raises(TrainingError, match="same source"):
        loso_summary([tmp_path / "run", tmp_path / "run"])
    (tmp_path / "run2").mkdir(exist_ok=True)
    (tmp_path / "run2" / "loso.json").write_text("{not json")
    with pytest.raises(TrainingError, match="not a leave-one-source-out result"):
        loso_summary([tmp_path / "run2"])


def test_burned_in_markers_change_the_film_but_not_its_range() -> None:
    from core.train.seg import burn_in_text

    img = np.full((128, 128), 0.4, np.float32)
    out = burn_in_text(img, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.float32
    assert (out != img).any() and float(out.max()) <= 1.0 and float(out.min()) >= 0.0
    assert (img == 0.4).all()  # the input is left alone


def _two_lung_film(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), bool)
    for cx in (0.3, 0.7):
        mask |= ((xx - cx * size) / (0.14 * size)) ** 2 + ((yy - 0.5 * size) / (0.3 * size)) ** 2 <= 1
    img = np.where(mask, 0.2, 0.8).astype(np.float32)
    return img, mask


def test_synthetic_opacities_whiten_the_lungs_only_and_draw_no_outline(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.train.seg import add_opacity

    img, mask = _two_lung_film()
    mask_before = mask.copy()
    far = ~cv2.dilate(mask.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
    lifts = []
    for seed in range(6):
        out = add_opacity(img, mask, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.float32
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert np.abs(out[far] - img[far]).max() < 1e-3  # nothing changes away from the lungs
        # what is already as bright as soft tissue stays as it is: no bright rim traces the mask
        assert float(out[mask].max()) <= 0.8 + 0.25 * (0.8 - 0.2)  # dense consolidation: about soft tissue
        assert float((out[~mask] - img[~mask]).max()) <= 1e-5
        lifts.append(float(out[mask].mean() - img[mask].mean()))
    assert min(lifts) > 0.01 and max(lifts) > 0.1  # every draw opacifies, some heavily
    assert (mask == mask_before).all()
    assert (add_opacity(img, np.zeros_like(mask), np.random.default_rng(0)) == img).all()  # no lungs: no change

    import core.train.seg as seg

    calls: list[int] = []
    monkeypatch.setattr(seg, "add_opacity", lambda i, m, r: calls.append(1) or add_opacity(i, m, r))
    for share, expected in ((0.0, 0), (1.0, 4)):  # the training path applies them exactly when asked
        calls.clear()
        for k in range(4):
            _, moved = seg._augment(img, mask, np.random.default_rng(k), 0.0, share)
            assert moved.dtype == bool and moved.shape == mask.shape
        assert len(calls) == expected

"""Lung outlines drawn in two conventions: what the standard channel learns from heart-including
outlines, figures that stay fair across conventions, and training that keeps them apart."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.train.conventions import mask_figures, standard_hint
from core.train.data import MaskPair
from core.train.seg import SegConfig, SegTrainer
from tests.engine_helpers import chest_like

CPU = torch.device("cpu")


def _two_boxes(size: int = 128) -> np.ndarray:
    """Two 'lungs' as boxes: columns 20-49 and 78-107, rows 20-99."""
    mask = np.zeros((size, size), bool)
    mask[20:100, 20:50] = True
    mask[20:100, 78:108] = True
    return mask


def test_standard_hint_trusts_only_what_both_conventions_agree_on() -> None:
    mask = _two_boxes()
    target, weight = standard_hint(mask)
    assert target.dtype == np.float32 and weight.dtype == np.float32
    assert target[60, 25] == 1 and weight[60, 25] == 1  # lateral half of the image-left lung: lung
    assert target[60, 102] == 1 and weight[60, 102] == 1  # lateral half of the image-right lung: lung
    assert weight[60, 45] == 0 and weight[60, 82] == 0  # medial halves: the conventions disagree
    assert target[60, 64] == 0 and weight[60, 64] == 1  # between the lungs, clear of the outline: not lung
    assert target[5, 5] == 0 and weight[5, 5] == 1
    assert weight[60, 20] == 0 and weight[60, 19] == 0  # a margin along the outline is left open
    assert not (target.astype(bool) & ~mask).any()  # never lung outside the outline
    assert (target <= weight).all()
    empty_t, empty_w = standard_hint(np.zeros((64, 64), bool))
    assert not empty_t.any() and (empty_w == 1).all()  # no outline: all of it is not lung


def test_a_standard_mask_scores_full_agreement_against_a_heart_including_outline() -> None:
    truth = _two_boxes()
    standard = truth.copy()
    standard[:, 38:50] = False  # the heart border sits medially in each lung
    standard[:, 78:90] = False
    fig = mask_figures(standard, truth, heart_including=True)
    assert fig["precision"] == 1.0 and fig["recall"] == pytest.approx(0.6)
    assert fig["dice"] == pytest.approx(2 * 0.6 / 1.6) and fig["area_ratio"] == pytest.approx(0.6)
    assert fig["agreed_dice"] == 1.0  # plain Dice 0.75 only because the conventions differ

    leaking = standard.copy()
    leaking[100:120, 20:50] = True  # into the abdomen: both conventions call that wrong
    assert mask_figures(leaking, truth, heart_including=True)["agreed_dice"] < 0.95
    shrunk = standard.copy()
    shrunk[:, 20:30] = False  # the lateral lung missed
    assert mask_figures(shrunk, truth, heart_including=True)["agreed_dice"] < 0.9
    assert "agreed_dice" not in mask_figures(standard, truth, heart_including=False)


def _folder(root: Path, sources: dict[str, int]) -> list[MaskPair]:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    pairs = []
    for k, (source, n) in enumerate(sources.items()):
        for i in range(n):
            img = chest_like(96, 96, seed=20 * k + i)
            name = f"{source}_{i}.png"
            cv2.imwrite(str(root / "images" / name), (img * 255).astype(np.uint8))
            cv2.imwrite(str(root / "masks" / name), (img < 0.3).astype(np.uint8) * 255)
            pairs.append(MaskPair(root / "images" / name, root / "masks" / name, source))
    return pairs


def test_heart_including_outlines_train_a_second_channel_that_is_not_shipped(tmp_path: Path) -> None:
    from core.models.segmenter import build_segmenter
    from core.segment import LungSegmenter
    from core.weights.model_file import load_state
    from tests.engine_helpers import make_segmenter_file

    pairs = _folder(tmp_path / "data", {"s": 2, "gbcovid": 2})
    start = make_segmenter_file(tmp_path, seed=5)
    cfg = SegConfig(epochs=2, batch_size=4, size=64, checkpoint_every=10**6, init_from=str(start),
                    heart_including=("gbcovid",))
    trainer = SegTrainer(cfg, pairs, tmp_path / "run", CPU)
    assert trainer.channels == 2
    head = trainer.model.state_dict()["segmentation_head.0.weight"]
    torch.testing.assert_close(head[0], head[1], rtol=0, atol=0)  # the second channel starts as the first

    x, y, w = trainer.batch(0)
    assert y.shape == w.shape == (4, 2, 64, 64)
    second_labelled = [bool((w[i, 1] == 1).all()) for i in range(4)]
    assert sorted(second_labelled) == [False, False, True, True]
    for i in range(4):
        if second_labelled[i]:  # heart-including: a partial label for the standard channel
            assert 0 < float(w[i, 0].mean()) < 1
        else:  # standard: full label for channel 0, none for channel 1
            assert bool((w[i, 0] == 1).all()) and bool((w[i, 1] == 0).all())

    def masked_loss() -> float:
        trainer.model.eval()
        with torch.no_grad():
            logits = trainer.model(x)
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
            return float(trainer._dice_loss(logits, y, w) + (bce * w).sum() / w.sum())

    before = masked_loss()
    for _ in range(3):
        trainer.step = 0
        trainer.train_step()
    assert masked_loss() < before

    trainer.export(tmp_path / "out")
    shipped = tmp_path / "out" / "lung-unet-densenet121.safetensors"
    state, _ = load_state(shipped)
    assert state["segmentation_head.0.weight"].shape[0] == 1
    trained = trainer.model.state_dict()
    for key in ("segmentation_head.0.weight", "segmentation_head.0.bias"):
        torch.testing.assert_close(state[key].float(), trained[key][:1].float(), rtol=0, atol=1e-3)
    assert set(state) == set(build_segmenter().state_dict())  # the shipped one-output architecture
    LungSegmenter(shipped, CPU)  # loads as any segmenter

    # resuming restores the two-channel model exactly
    trainer.save()
    again = SegTrainer(cfg, pairs, tmp_path / "run", CPU)
    assert again.resume()
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_leaving_out_one_outline_set_leaves_out_the_other_of_the_same_films(tmp_path: Path) -> None:
    from core.train.evaluate import evaluate_segmenter
    from core.train.report import loso_markdown
    from core.train.seg import loso_summary, remeasure_fold, run_seg_training
    from tests.engine_helpers import make_segmenter_file

    data = tmp_path / "data"
    _folder(data, {"shenzhen": 3, "gbcovid": 3, "v7covid": 2})
    base = make_segmenter_file(tmp_path, seed=3)
    cfg = SegConfig(epochs=1, batch_size=2, size=64, leave_out="gbcovid", init_from=str(base), exclude=(),
                    heart_including=("gbcovid", "v7covid"))
    run_seg_training(cfg, data, tmp_path / "fold", CPU, progress=False)
    split = json.loads((tmp_path / "fold" / "split.json").read_text())
    assert sorted(split["train"]) == ["shenzhen_0.png", "shenzhen_1.png", "shenzhen_2.png"]  # no v7covid film
    loso = json.loads((tmp_path / "fold" / "loso.json").read_text())
    assert loso["left_out"] == "gbcovid" and loso["n"] == 3
    for key in ("dice", "precision", "recall", "area_ratio", "agreed_dice"):
        assert loso[key] >= 0.0 and all(key in f for f in loso["films"])

    # an old record (Dice only) is measured again with today's figures, keeping how it was trained
    (tmp_path / "fold" / "loso.json").write_text(json.dumps({k: loso[k] for k in
                                                             ("left_out", "n", "dice", "dice_median", "worst",
                                                              "steps", "epochs", "size")}))
    again = remeasure_fold(tmp_path / "fold", data, CPU)
    assert again["agreed_dice"] == loso["agreed_dice"] and again["steps"] == loso["steps"]

    run_seg_training(SegConfig(epochs=1, batch_size=2, size=64, leave_out="shenzhen", init_from=str(base),
                               exclude=(), heart_including=("gbcovid", "v7covid")),
                     data, tmp_path / "fold-s", CPU, progress=False)
    summary = loso_summary([tmp_path / "fold", tmp_path / "fold-s"])
    folds = {f["left_out"]: f for f in summary["folds"]}
    assert "agreed_dice" not in folds["shenzhen"]
    assert summary["mean_convention_fair_dice"] == pytest.approx(
        (folds["gbcovid"]["agreed_dice"] + folds["shenzhen"]["dice"]) / 2, abs=1e-4)
    assert "agreed-region Dice" in "\n".join(loso_markdown(summary))

    report = evaluate_segmenter(data, tmp_path / "fold" / "model" / "lung-unet-densenet121.safetensors", CPU, 0,
                                all_images=True)
    assert report["by_dataset"]["gbcovid"]["convention"] == "heart-including"
    assert "agreed_dice" in report["by_dataset"]["v7covid"] and "agreed_dice" not in report["by_dataset"]["shenzhen"]
    assert report["standard_convention"]["n"] == 3  # Shenzhen alone is standard

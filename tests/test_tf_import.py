"""Importer fidelity against the authors' TensorFlow reference vectors, and bad checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import CheckpointImportError
from core.models import build_discriminator, build_generator
from core.weights.tf_checkpoint import TFCheckpoint
from core.weights.tf_import import import_tf_checkpoint, import_tf_discriminator
from tests.tf_bundle import write_bundle

GENERATORS = [("operational_q1", "operational", 1), ("operational_q3", "operational", 3),
              ("convolutional-light", "convolutional-light", None), ("convolutional", "convolutional", None)]


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def reference_input(reference_dir: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(reference_dir / "vectors" / "input.npy")).permute(0, 3, 1, 2)


@pytest.mark.parametrize(("name", "arch", "q"), GENERATORS)
def test_imported_generator_matches_tensorflow(reference_dir: Path, reference_input: torch.Tensor,
                                               name: str, arch: str, q: int | None) -> None:
    g = build_generator(arch, q)
    g.load_state_dict(import_tf_checkpoint(reference_dir / "checkpoints" / name, arch, q))
    g.eval()
    vectors = reference_dir / "vectors" / name
    with torch.no_grad():
        out1, cls1 = g(reference_input)
        _, logits1 = g.forward_logits(reference_input)
        out2, cls2 = g(out1)
        out3, cls3 = g(out2)
    assert np.abs(nhwc(out1) - np.load(vectors / "out_iter1.npy")).max() <= 1e-4
    assert np.abs(nhwc(out3) - np.load(vectors / "out_iter3.npy")).max() <= 1e-3
    for k, cls in ((1, cls1), (2, cls2), (3, cls3)):
        assert np.abs(cls.numpy() - np.load(vectors / f"class_iter{k}.npy")).max() <= 1e-5
    assert np.abs(logits1.numpy() - np.load(vectors / "logits_iter1.npy")).max() <= 1e-4


def test_imported_discriminator_matches_tensorflow(reference_dir: Path, reference_input: torch.Tensor) -> None:
    d = build_discriminator("convolutional-light")
    d.load_state_dict(import_tf_discriminator(reference_dir / "checkpoints" / "D_convolutional-light",
                                              "convolutional-light"))
    with torch.no_grad():
        out = d.eval()(reference_input)
    expected = np.load(reference_dir / "vectors" / "D_convolutional-light" / "output.npy")
    assert np.abs(nhwc(out) - expected).max() <= 1e-4


def _reference_tensors(reference_dir: Path, name: str) -> dict[str, np.ndarray]:
    ckpt = TFCheckpoint(reference_dir / "checkpoints" / name)
    return {n: ckpt.read(n) for n in ckpt.names() if n.startswith("G_A2B/")}


def test_train_style_checkpoint_takes_g_a2b(reference_dir: Path, tmp_path: Path) -> None:
    """A train.py checkpoint also holds G_B2A, D_A/D_B and Adam slots; only G_A2B is taken."""
    g = _reference_tensors(reference_dir, "operational_q1")
    tensors: dict[str, np.ndarray] = {}
    for key, value in g.items():
        tensors[key] = value
        tensors[key.replace("G_A2B/", "G_B2A/")] = value * 0.5 + 1.0  # a different generator
        slot = key.replace("/.ATTRIBUTES/VARIABLE_VALUE", "/.OPTIMIZER_SLOT/G_optimizer/m/.ATTRIBUTES/VARIABLE_VALUE")
        tensors[slot] = np.full_like(value, 7.0)
    tensors["D_A/layer_with_weights-0/all_layers/0/kernel/.ATTRIBUTES/VARIABLE_VALUE"] = np.ones((4, 4, 3, 64),
                                                                                                 np.float32)
    tensors["G_optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"] = np.array(1000, np.int64)
    tensors["ep_cnt/.ATTRIBUTES/VARIABLE_VALUE"] = np.array(5, np.int64)
    write_bundle(tmp_path / "train" / "ckpt-5", tensors)

    direct = import_tf_checkpoint(reference_dir / "checkpoints" / "operational_q1", "operational", 1)
    from_train = import_tf_checkpoint(tmp_path / "train", "operational", 1)
    assert direct.keys() == from_train.keys()
    for key in direct:
        torch.testing.assert_close(direct[key], from_train[key], rtol=0, atol=0)
    other = import_tf_checkpoint(tmp_path / "train" / "ckpt-5.index", "operational", 1, root="G_B2A")
    assert not torch.equal(other["down.weight"], direct["down.weight"])


def test_wrong_architecture_is_named(reference_dir: Path) -> None:
    with pytest.raises(CheckpointImportError, match=r"q=3"):
        import_tf_checkpoint(reference_dir / "checkpoints" / "operational_q3", "operational", 1)
    with pytest.raises(CheckpointImportError, match="weighted layers"):
        import_tf_checkpoint(reference_dir / "checkpoints" / "operational_q3", "convolutional")
    with pytest.raises(CheckpointImportError, match="no G_A2B model"):
        import_tf_checkpoint(reference_dir / "checkpoints" / "D_convolutional-light", "convolutional-light")


def test_damaged_checkpoints_fail_cleanly(reference_dir: Path, tmp_path: Path) -> None:
    src = reference_dir / "checkpoints" / "convolutional-light"
    truncated = tmp_path / "truncated"
    shutil.copytree(src, truncated)
    data = truncated / "ckpt-0.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(CheckpointImportError, match="truncated"):
        import_tf_checkpoint(truncated, "convolutional-light")

    garbage = tmp_path / "garbage"
    shutil.copytree(src, garbage)
    (garbage / "ckpt-0.index").write_bytes(b"not an sstable at all, just text" * 4)
    with pytest.raises(CheckpointImportError, match="unreadable checkpoint index"):
        import_tf_checkpoint(garbage, "convolutional-light")

    with pytest.raises(CheckpointImportError, match="no TensorFlow checkpoint"):
        import_tf_checkpoint(tmp_path, "convolutional-light")
    with pytest.raises(CheckpointImportError, match="not found"):
        import_tf_checkpoint(tmp_path / "nope" / "ckpt-1", "convolutional-light")

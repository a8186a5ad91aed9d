"""The engine's command line: one-line errors and exit codes, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.main import main as cli
from tests.engine_helpers import make_generator_file, make_segmenter_file

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli.main", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_import_tf_with_the_wrong_q_is_one_line(reference_dir: Path, tmp_path: Path) -> None:
    proc = run_cli("import-tf", str(reference_dir / "checkpoints" / "operational_q3"), "--arch", "operational",
                   "--q", "5", "--out", str(tmp_path / "x.safetensors"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r2c-review: error: ") and "q=3" in lines[0]
    assert not (tmp_path / "x.safetensors").exists()


def test_restore_without_weights_and_with_bad_inputs(tmp_path: Path, dicom_dir: Path) -> None:
    missing = tmp_path / "missing.safetensors"
    proc = run_cli("restore", str(dicom_dir), "--weights", str(missing), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"r2c-review: error: {missing}: model file not found"
    assert not (tmp_path / "o").exists()

    models = tmp_path / "models"
    models.mkdir()
    make_generator_file(models, "r2c-q1")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    proc = run_cli("restore", str(dicom_dir / "pylibjpegdata_966_BROKEN_J2K.dcm"), str(garbage),
                   str(dicom_dir / "fodicom_CR-MONO1-10-chest.dcm"), "--variant", "r2c-q1", "--out",
                   str(tmp_path / "o"), env={"R2C_MODELS_DIR": str(models)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("r2c-review: error:")]
    assert len(errors) == 2
    assert any("BROKEN_J2K" in e for e in errors) and any("garbage.png" in e for e in errors)
    assert (tmp_path / "o" / "fodicom_CR-MONO1-10-chest_r2c-q1_x3.png").is_file()


def test_segment_writes_masks_overlays_and_areas(tmp_path: Path, dicom_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr("core.variants.RESOURCES", tmp_path / "none")
    assert cli(["segment", str(dicom_dir / "nhsx_nih_chestxray_DX_8bit.dcm"), "--out", str(tmp_path / "s")]) == 2
    assert "no trained lung segmenter installed" in capsys.readouterr().err
    weights = make_segmenter_file(tmp_path)
    assert cli(["segment", str(dicom_dir / "nhsx_nih_chestxray_DX_8bit.dcm"), "--weights", str(weights),
                "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "nhsx_nih_chestxray_DX_8bit_mask.png").is_file()
    assert (tmp_path / "s" / "nhsx_nih_chestxray_DX_8bit_overlay.png").is_file()
    assert "lung_fraction" in (tmp_path / "s" / "lung_areas.csv").read_text()


def test_an_output_folder_the_machine_refuses_is_one_line(tmp_path: Path, dicom_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # The OS refuses the write (here: the output's parent is a file; a full disk goes the same way):
    # one line naming the path, exit code 2, no traceback.
    weights = make_segmenter_file(tmp_path)
    blocker = tmp_path / "report.txt"
    blocker.write_text("a file, not a folder")
    code = cli(["segment", str(dicom_dir / "nhsx_nih_chestxray_DX_8bit.dcm"), "--weights", str(weights),
                "--out", str(blocker / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"r2c-review: error: {blocker / 's'}: Not a directory"]
    assert blocker.read_text() == "a file, not a folder"


def test_models_lists_every_variant_and_flags_broken_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys) -> None:
    monkeypatch.setenv("R2C_MODELS_DIR", str(tmp_path))
    path = make_generator_file(tmp_path, "r2c-q3")
    path.write_bytes(path.read_bytes()[:-4] + b"XXXX")
    assert cli(["models", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "device: cpu" in out
    for vid in ("r2c-cnn", "r2c-cnn-light", "r2c-q1", "r2c-q3", "r2c-q5"):
        assert vid in out
    assert "UNUSABLE" in out and "does not match its manifest" in out

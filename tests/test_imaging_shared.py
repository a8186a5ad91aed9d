"""The real chest CR/DX files in ../shared/data/dicom: size, decoding, display chain, anatomy.

Anatomy checks (verified by eye on the previews this module writes to tests/_artifacts):
lungs are dark and the mediastinum/spine strip bright (polarity), the diaphragm/abdomen band
at the bottom is brighter than the neck/apex band at the top (not upside down), and the heart
shadow reaches further into the image's right half (the patient's left: not mirrored).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ImplicitVRLittleEndian

from core.errors import ImageLoadError
from core.imaging import XRay, load_xray

BROKEN = "pylibjpegdata_966_BROKEN_J2K.dcm"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sources(dicom_dir: Path) -> dict[str, dict[str, str]]:
    with open(dicom_dir / "sources.csv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="session")
def good_names(sources) -> list[str]:
    return sorted(name for name in sources if name != BROKEN)


@pytest.fixture(scope="session")
def shared_xrays(dicom_dir: Path, good_names) -> dict[str, XRay]:
    """Each good file decoded once per session (the JPEG 2000 ones take a while)."""
    return {name: load_xray(dicom_dir / name) for name in good_names}


def box(image: np.ndarray, r0: float, r1: float, c0: float, c1: float) -> float:
    h, w = image.shape
    return float(image[int(r0 * h) : int(r1 * h), int(c0 * w) : int(c1 * w)].mean())


def test_every_good_file_loads_with_the_listed_size(shared_xrays, sources, good_names):
    assert len(good_names) == 5  # ../shared/data/dicom/README: six files, one deliberately broken
    for name in good_names:
        xr, row = shared_xrays[name], sources[name]
        assert xr.values.shape == (int(row["rows"]), int(row["columns"])), name
        assert xr.size == (int(row["columns"]), int(row["rows"])), name
        assert xr.bits_stored == int(row["bits_stored"]), name
        assert xr.photometric == row["photometric_interpretation"], name
        assert xr.modality == row["modality"], name
        assert xr.invert is (row["photometric_interpretation"] == "MONOCHROME1"), name
        assert xr.display.dtype == np.float32 and xr.display.min() >= 0 and xr.display.max() <= 1


def _pydicom_dataset(path: Path) -> pydicom.Dataset:
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # the fo-dicom file has no meta (sources.csv)
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return ds


def test_values_and_display_agree_with_pydicom(shared_xrays, dicom_dir, good_names):
    """Same pixels in the same orientation as pydicom's decoder, and the same VOI output."""
    for name in good_names:
        xr, ds = shared_xrays[name], _pydicom_dataset(dicom_dir / name)
        values = apply_modality_lut(ds.pixel_array, ds)
        assert np.array_equal(xr.values, values.astype(np.float32)), name
        if "WindowCenter" not in ds:  # 8-bit secondary capture: shown as stored
            assert np.array_equal(xr.display, values.astype(np.float32) / 255), name
            continue
        y_min, y_max = apply_voi_lut(np.array([-1e9, 1e9]), ds).astype(np.float64)
        voi = (apply_voi_lut(values, ds) - y_min) / (y_max - y_min)
        expected = 1.0 - voi if ds.PhotometricInterpretation == "MONOCHROME1" else voi
        np.testing.assert_allclose(xr.display, expected, atol=1e-4, err_msg=name)


def test_anatomy_is_upright_unmirrored_and_lungs_dark(shared_xrays, good_names, artifacts_dir):
    for name in good_names:
        d = shared_xrays[name].display
        preview = shared_xrays[name].to_uint8()
        scale = 512 / max(preview.shape)
        small = cv2.resize(preview, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(artifacts_dir / f"imaging_{Path(name).stem}.png"), small)

        lungs = (box(d, 0.30, 0.55, 0.20, 0.38) + box(d, 0.30, 0.55, 0.62, 0.80)) / 2
        mediastinum = box(d, 0.25, 0.70, 0.46, 0.54)
        top, bottom = box(d, 0.0, 0.15, 0.25, 0.75), box(d, 0.85, 1.0, 0.25, 0.75)
        heart_left_of_patient, other_side = box(d, 0.55, 0.75, 0.55, 0.68), box(d, 0.55, 0.75, 0.32, 0.45)
        assert mediastinum > lungs + 0.1, name
        assert bottom > top + 0.1, name
        assert heart_left_of_patient > other_side + 0.02, name


def test_window_presets_of_real_files(shared_xrays):
    rg1 = shared_xrays["pydicomdata_RG1_J2KI.dcm"]
    assert (rg1.windows[0].center, rg1.windows[0].width) == (15000, 30000)
    assert [w.name for w in rg1.windows[1:]] == ["Automatic", "Data range", "Full range"]
    auto = rg1.windows[1]
    assert auto.center - auto.width / 2 > 803 and auto.center + auto.width / 2 < 26512
    sc = shared_xrays["nhsx_nih_chestxray_DX_8bit.dcm"]
    assert sc.windows[0].name == "Full range" and (sc.windows[0].center, sc.windows[0].width) == (127.5, 255)


def test_metadata_of_real_files(shared_xrays):
    dx = shared_xrays["pylibjpegdata_966_fixed.dcm"]
    assert dx.pixel_spacing == (0.16, 0.16)
    assert dx.identifiers.patient_id == "2010101610-1"
    assert shared_xrays["pydicomdata_RG1_J2KI.dcm"].pixel_spacing is None  # stored as 0\0
    rg1 = shared_xrays["pydicomdata_RG1_J2KI.dcm"]
    assert rg1.identifiers.patient_name == "CompressedSamples^RG1" and rg1.identifiers.sex == "F"
    assert rg1.blinded().identifiers.patient_name is None


def test_broken_jpeg2000_fails_cleanly(dicom_dir, capfd):
    path = dicom_dir / BROKEN
    with pytest.raises(ImageLoadError) as info:
        load_xray(path)
    assert BROKEN in str(info.value)
    assert info.value.reason == "JPEG 2000 pixel data cannot be decoded (codestream truncated or corrupt)"
    assert capfd.readouterr().err == ""  # OpenJPEG's "Stream too short" is not let through


def test_convert_cli_on_a_folder_with_the_broken_file(dicom_dir, shared_xrays, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    names = [BROKEN, "fodicom_CR-MONO1-10-chest.dcm", "nhsx_nih_chestxray_DX_8bit.dcm"]
    try:
        for name in names:
            os.symlink(dicom_dir / name, folder / name)  # linked, never copied
    except OSError:
        pytest.skip("symbolic links are not available here")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "core.cli.main", "convert", str(folder), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("r2c-review: error: ") and BROKEN in errors[0]
    assert sorted(p.name for p in out.iterdir()) == [
        "fodicom_CR-MONO1-10-chest.png",
        "nhsx_nih_chestxray_DX_8bit.png",
    ]
    for name in names[1:]:
        png = cv2.imread(str(out / f"{Path(name).stem}.png"), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and np.array_equal(png, shared_xrays[name].to_uint8())

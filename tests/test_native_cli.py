"""``restore`` and ``segment`` from the command line at the film's own size: PNG, DICOM SC, DICOM SEG."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from PIL import Image

from core.cli.main import main as cli
from core.exports import read_dicom_seg
from tests.engine_helpers import make_generator_file, make_segmenter_file
from tests.imaging_fixtures import make_dataset, phantom, stored_pixels, write_dicom


@pytest.fixture()
def film(tmp_path: Path) -> Path:
    ds = make_dataset(stored_pixels(phantom(420, 330), 12), 12, PixelSpacing=[0.15, 0.15])
    return write_dicom(ds, tmp_path / "film.dcm")


@pytest.fixture()
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("R2C_MODELS_DIR", str(folder))
    return folder


@pytest.mark.slow
def test_restore_writes_the_films_size_as_png_and_dicom(tmp_path: Path, film: Path, models: Path) -> None:
    make_generator_file(models, "r2c-q1")
    out = tmp_path / "out"
    assert cli(["restore", str(film), "--variant", "r2c-q1", "--iterations", "1", "--out", str(out)]) == 0
    with Image.open(out / "film_r2c-q1_x1.png") as im:
        assert im.size == (330, 420)
    assert cli(["restore", str(film), "--variant", "r2c-q1", "--iterations", "1", "--out", str(out),
                "--format", "dicom", "--bits", "16"]) == 0
    ds, src = pydicom.dcmread(out / "film_r2c-q1_x1.dcm"), pydicom.dcmread(film)
    assert (ds.Rows, ds.Columns) == (src.Rows, src.Columns)
    assert [float(v) for v in ds.PixelSpacing] == [0.15, 0.15] and ds.BitsAllocated == 16
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert cli(["restore", str(film), "--variant", "r2c-q1", "--iterations", "1", "--out", str(tmp_path / "m"),
                "--resolution", "model"]) == 0
    with Image.open(tmp_path / "m" / "film_r2c-q1_x1.png") as im:
        assert im.size == (201, 256)  # the generator's 256 px at the film's aspect ratio


@pytest.mark.slow
def test_segment_writes_a_dicom_seg_over_the_film(tmp_path: Path, film: Path, capsys) -> None:
    weights = make_segmenter_file(tmp_path)
    png = tmp_path / "plain.png"
    Image.new("L", (64, 48), 100).save(png)
    out = tmp_path / "seg"
    rc = cli(["segment", str(film), str(png), "--weights", str(weights), "--out", str(out), "--format", "dicom-seg"])
    assert rc == 1  # the PNG cannot carry a SEG: reported in one line, the DICOM film still done
    err = capsys.readouterr().err
    assert "plain.png: a DICOM Segmentation needs a DICOM source film" in err and "Traceback" not in err
    seg = hd.seg.segread(out / "film_lungs.seg.dcm")
    src = pydicom.dcmread(film)
    assert (seg.Rows, seg.Columns) == (src.Rows, src.Columns)
    mask, uid = read_dicom_seg(out / "film_lungs.seg.dcm")
    assert uid == src.SOPInstanceUID and mask.shape == (420, 330)
    assert "lung_px" in (out / "lung_areas.csv").read_text()


@pytest.mark.slow
def test_bundled_q3_restores_a_real_dx_film_at_its_own_size(tmp_path: Path, dicom_dir: Path) -> None:
    """The issue's check: a 2000 x 2128 JPEG 2000 DX film comes back 2000 x 2128, spacing kept, as PNG and DICOM."""
    film = dicom_dir / "pylibjpegdata_966_fixed.dcm"
    out = tmp_path / "D"
    assert cli(["restore", str(film), "--variant", "r2c-q3", "--out", str(out)]) == 0
    png = next(out.glob("*.png"))
    with Image.open(png) as im:
        assert im.size == (2000, 2128)
    assert cli(["restore", str(film), "--variant", "r2c-q3", "--out", str(out), "--format", "dicom"]) == 0
    ds, src = pydicom.dcmread(next(out.glob("*.dcm"))), pydicom.dcmread(film, stop_before_pixels=True)
    assert (ds.Rows, ds.Columns) == (src.Rows, src.Columns) == (2128, 2000)
    assert [float(v) for v in ds.PixelSpacing] == [float(v) for v in src.PixelSpacing]
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == src.PatientID

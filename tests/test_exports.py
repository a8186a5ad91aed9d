"""Exports at the film's own size: PNG 8/16-bit, DICOM Secondary Capture and DICOM SEG (highdicom)."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image

from core.errors import R2CError
from core.exports import RestoredImage, export_pixels, read_dicom_seg, write_dicom_sc, write_dicom_seg, write_png
from core.imaging import load_xray
from tests.engine_helpers import chest_like
from tests.imaging_fixtures import make_dataset, phantom, stored_pixels, write_dicom

ROWS, COLS = 300, 220
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR DA")  # the fixture's anonymised birth date


@pytest.fixture()
def dicom_film(tmp_path: Path) -> Path:
    """A CR film with spacing, orientation and identity, plus an anonymiser's invalid birth date."""
    ds = make_dataset(stored_pixels(phantom(ROWS, COLS), 12), 12, PixelSpacing=[0.2, 0.2],
                      PatientOrientation=["L", "F"], PatientBirthDate="d14a028c2a3a2bc9", PatientSex="F",
                      StudyDate="20250102", AccessionNumber="ACC-7")
    return write_dicom(ds, tmp_path / "film.dcm")


def restored(xray, resolution: str = "native") -> RestoredImage:
    pixels = np.asarray(xray.display) if resolution == "native" else chest_like(256, 256)
    return RestoredImage.from_xray(xray, pixels, "r2c-q1", "R2C-GAN (Q=1)", 3, "ab" * 32, resolution)


def test_png_keeps_the_films_size_and_bit_depth(tmp_path: Path, dicom_film: Path) -> None:
    xray = load_xray(dicom_film)
    image = restored(xray)
    p8 = write_png(tmp_path / "r8.png", image)
    p16 = write_png(tmp_path / "r16.png", image, bits=16)
    with Image.open(p8) as im8, Image.open(p16) as im16:
        assert im8.size == im16.size == (COLS, ROWS)
        assert im8.mode == "L" and im16.mode.startswith("I")
        assert "R2C-GAN (Q=1)" in im8.info["Description"] and "3 passes" in im8.info["Description"]
        a16 = np.asarray(im16).astype(np.float64) / 65535
    np.testing.assert_allclose(a16, xray.display, atol=1 / 65535)


def test_model_resolution_export_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    """The 256 x 256 result of a 512 x 422 film is written 256 x 211, not squashed to a square."""
    source = tmp_path / "film.png"
    Image.fromarray((chest_like(422, 512) * 255).astype(np.uint8)).save(source)
    image = restored(load_xray(source), "model")
    assert export_pixels(image).shape == (211, 256)
    with Image.open(write_png(tmp_path / "m.png", image)) as im:
        assert im.size == (256, 211)


def test_dicom_secondary_capture_carries_the_sources_geometry_and_identity(tmp_path: Path,
                                                                          dicom_film: Path) -> None:
    xray = load_xray(dicom_film)
    src = pydicom.dcmread(dicom_film)
    out = write_dicom_sc(tmp_path / "sc.dcm", restored(xray), bits=16)
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert (ds.Rows, ds.Columns) == (src.Rows, src.Columns) == (ROWS, COLS)
    assert [float(v) for v in ds.PixelSpacing] == [0.2, 0.2]
    assert ds.PatientID == "P-0001" and str(ds.PatientName) == "Doe^Jane" and ds.PatientSex == "F"
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.AccessionNumber == "ACC-7"
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID and ds.SOPInstanceUID != src.SOPInstanceUID
    assert ds.PatientBirthDate == ""  # the invalid value is not copied
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"] and "r2c-q1" in ds.DerivationDescription
    ref = ds.SourceImageSequence[0]
    assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (src.SOPClassUID, src.SOPInstanceUID)
    assert ds.BitsAllocated == 16 and ds.pixel_array.dtype == np.uint16
    np.testing.assert_allclose(ds.pixel_array / 65535.0, xray.display, atol=1 / 65535)
    assert load_xray(out).size == xray.size  # and it reopens in the app


def test_dicom_secondary_capture_of_a_png_film(tmp_path: Path) -> None:
    source = tmp_path / "film.png"
    Image.fromarray((chest_like(180, 240) * 255).astype(np.uint8)).save(source)
    ds = pydicom.dcmread(write_dicom_sc(tmp_path / "sc.dcm", restored(load_xray(source))))
    assert (ds.Rows, ds.Columns) == (180, 240) and ds.BitsAllocated == 8
    assert "SourceImageSequence" not in ds and ds.PatientOrientation == ""


def test_dicom_seg_references_the_film_and_round_trips(tmp_path: Path, dicom_film: Path) -> None:
    src = pydicom.dcmread(dicom_film)
    mask = np.zeros((ROWS, COLS), bool)
    mask[60:220, 30:95] = mask[60:220, 125:190] = True
    out = write_dicom_seg(tmp_path / "lungs.seg.dcm", mask, dicom_film, "sha256:0123")
    seg = hd.seg.segread(out)  # highdicom parses and validates it as a Segmentation
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage and seg.SegmentationType == "BINARY"
    assert (seg.Rows, seg.Columns) == (ROWS, COLS)
    assert seg.StudyInstanceUID == src.StudyInstanceUID and seg.PatientID == src.PatientID
    assert seg.SegmentSequence[0].SegmentLabel == "Lungs"
    back, uid = read_dicom_seg(out)
    assert uid == src.SOPInstanceUID
    assert np.array_equal(back, mask)
    small = write_dicom_seg(tmp_path / "small.seg.dcm", mask[::2, ::2], dicom_film)  # resized to the film
    assert read_dicom_seg(small)[0].shape == (ROWS, COLS)


def test_dicom_seg_needs_a_dicom_film_and_bad_files_are_named(tmp_path: Path) -> None:
    source = tmp_path / "film.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(source)
    with pytest.raises(R2CError, match=r"film\.png: a DICOM Segmentation needs a DICOM source film"):
        write_dicom_seg(tmp_path / "x.dcm", np.zeros((20, 20), bool), source)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    with pytest.raises(R2CError, match=r"junk\.dcm: not a readable DICOM Segmentation"):
        read_dicom_seg(junk)


def test_tf_import_is_part_of_the_weights_api() -> None:
    from core.weights import import_tf_checkpoint
    from core.weights.tf_import import import_tf_checkpoint as direct

    assert import_tf_checkpoint is direct

"""``r2c-review convert`` on files the tests write themselves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.cli.main import main
from core.imaging import Window, load_xray, to_uint8
from tests.imaging_fixtures import make_dataset, phantom, stored_pixels, write_dicom

DENSITY = phantom()
GRAY8 = np.rint(DENSITY * 255).astype(np.uint8)


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    ds = make_dataset(stored_pixels(DENSITY, 12, monochrome1=True), 12, "MONOCHROME1")
    ds.PatientName, ds.PatientID = "Secret^Name", "ID-SECRET-42"
    write_dicom(ds, folder / "a.dcm")
    cv2.imwrite(str(folder / "sub" / "a.png"), GRAY8)
    cv2.imwrite(str(folder / "b.tif"), (GRAY8.astype(np.uint16) * 257))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_converts_folder_with_unique_names_and_no_identifiers(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["convert", str(inputs), "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in out.iterdir()) == ["a-1.png", "a.png", "b.png"]  # no temp files left
    dicom_png = (out / "a.png").read_bytes()
    assert b"Secret" not in dicom_png and b"ID-SECRET" not in dicom_png
    assert set(png_chunks(dicom_png)) <= {b"IHDR", b"IDAT", b"IEND"}
    for src, dst in [("a.dcm", "a.png"), ("sub/a.png", "a-1.png"), ("b.tif", "b.png")]:
        written = cv2.imread(str(out / dst), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8 and written.shape == DENSITY.shape
        assert np.array_equal(written, load_xray(inputs / src).to_uint8())
    assert np.array_equal(cv2.imread(str(out / "a-1.png"), cv2.IMREAD_UNCHANGED), GRAY8)


def test_window_and_invert_options(inputs, tmp_path):
    out = tmp_path / "out"
    assert main(["convert", str(inputs / "a.dcm"), "--out", str(out), "--window", "2000,1500", "--invert"]) == 0
    xr = load_xray(inputs / "a.dcm")
    expected = to_uint8(xr.render(Window(2000, 1500, "", "LINEAR"), invert=not xr.invert))
    assert np.array_equal(cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED), expected)
    assert not np.array_equal(expected, xr.to_uint8())


def test_bad_files_are_reported_and_the_rest_converted(inputs, tmp_path, capsys):
    (inputs / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    out = tmp_path / "out"
    code = main(["convert", str(inputs), str(tmp_path / "missing.dcm"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 2 and all(line.startswith("r2c-review: error: ") for line in err)
    assert "missing.dcm: file not found" in err[0] and "bad.png" in err[1]
    assert len(list(out.glob("*.png"))) == 3


def test_argument_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", str(tmp_path), "--out", str(tmp_path / "o"), "--window", "12"])
    assert info.value.code == 2 and "CENTER,WIDTH" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["convert", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 1
    assert "no supported images" in capsys.readouterr().err

"""The loader never takes the process down: declared sizes and codestreams are checked before decoding.

Each case here crashed the process, ate gigabytes, or returned a black image before the
checks in core/imaging/declared.py, limits.py and isolated.py. The bombs run in a child
with a 2 GiB address-space cap, so a regression fails the test instead of the machine.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, RLELossless

from core.errors import ImageLoadError
from core.imaging import load_xray
from core.imaging.isolated import IsolatedLoader
from tests.fuzz_harness import deflate_bomb
from tests.imaging_fixtures import make_dataset, phantom, stored_pixels, write_dicom

REPO = Path(__file__).resolve().parents[1]
_CAPPED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from core.errors import ImageLoadError
from core.imaging import load_xray
try:
    x = load_xray(sys.argv[1])
    print("LOADED", x.size)
except ImageLoadError as exc:
    print("ERROR", exc.one_line())
"""


def load_capped(path: Path) -> tuple[int, str]:
    """Load in a fresh interpreter with a 2 GiB address-space cap and a 60 s limit: (exit status, output)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", _CAPPED, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env=env)
    return done.returncode, done.stdout.strip()


def _dicom(tmp_path: Path, syntax=None, name="seed.dcm", **attributes) -> Path:
    ds = make_dataset(stored_pixels(phantom(48, 40), 12), 12, **attributes)
    return write_dicom(ds, tmp_path / name, syntax) if syntax else write_dicom(ds, tmp_path / name)


def _retag(path: Path, out: Path, **attributes) -> Path:
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(out)
    return out


def _png(tmp_path: Path) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", stored_pixels(phantom(48, 40), 8))
    assert ok
    return data.tobytes()


def _set_ihdr(data: bytes, width: int, height: int) -> bytes:
    out = bytearray(data)
    out[16:24] = struct.pack(">II", width, height)
    out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    return bytes(out)


def test_jpeg2000_monochrome_tagged_rgb_is_an_error_not_an_abort(tmp_path):
    """GDCM threw an uncaught C++ exception (SIGABRT) on this file; now the header check refuses it."""
    source = _dicom(tmp_path, JPEG2000Lossless)
    bad = _retag(source, tmp_path / "rgb.dcm", SamplesPerPixel=3, PhotometricInterpretation="RGB",
                 PlanarConfiguration=0)
    status, out = load_capped(bad)
    assert status == 0, f"process died with status {status}"
    assert out.startswith("ERROR") and "codestream declares 40x48 with 1 component" in out and "3 sample" in out


def test_jpeg_lossless_with_32_bits_allocated_is_an_error_not_an_abort(tmp_path):
    """Found by the 10,000-file fuzz run: GDCM aborts on JPEG Lossless pixel data whose header says
    Bits Allocated 32; the header check refuses it first."""
    source = _dicom(tmp_path, JPEGLosslessSV1)
    bad = _retag(source, tmp_path / "bits32.dcm", BitsAllocated=32)
    status, out = load_capped(bad)
    assert status == 0, f"process died with status {status}"
    assert out.startswith("ERROR") and "needs Bits Allocated 8 or 16" in out and "32" in out


def _patch_siz(path: Path, out: Path, width: int, height: int) -> Path:
    data = bytearray(path.read_bytes())
    siz = data.index(b"\xff\x4f\xff\x51") + 4
    data[siz + 4:siz + 12] = struct.pack(">II", width, height)
    data[siz + 20:siz + 28] = struct.pack(">II", width, height)  # one tile
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("case", ["j2k-siz-bomb", "rle-rows-bomb", "png-ihdr-bomb", "png-idat-length",
                                  "deflate-bomb"])
def test_size_bombs_are_refused_before_decoding(tmp_path, case):
    if case == "j2k-siz-bomb":
        path = _patch_siz(_dicom(tmp_path, JPEG2000Lossless), tmp_path / "bomb.dcm", 60000, 60000)
        expected = "codestream declares 60000x60000"
    elif case == "rle-rows-bomb":
        path = _retag(_dicom(tmp_path, RLELossless), tmp_path / "bomb.dcm", Rows=65535, Columns=65535)
        expected = "more than the limit of 100 megapixels"
    elif case == "png-ihdr-bomb":
        path = tmp_path / "bomb.png"
        path.write_bytes(_set_ihdr(_png(tmp_path), 30000, 30000))
        expected = "declares 30000x30000"
    elif case == "png-idat-length":
        data = bytearray(_png(tmp_path))
        at = data.index(b"IDAT") - 4
        data[at:at + 4] = b"\xff\xff\xff\xff"
        path = tmp_path / "bomb.png"
        path.write_bytes(bytes(data))
        expected = "impossible length"
    else:
        path = tmp_path / "bomb.dcm"
        path.write_bytes(deflate_bomb())
        expected = "deflated DICOM data expands to more than"
    status, out = load_capped(path)
    assert status == 0, f"process died with status {status}: {out}"
    assert out.startswith("ERROR") and str(path) in out and expected in out, out


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = _dicom(tmp_path)  # 40x48 = 1920 pixels
    monkeypatch.setenv("R2C_MAX_MEGAPIXELS", "0.001")
    with pytest.raises(ImageLoadError, match="more than the limit of 0 megapixels"):
        load_xray(path)
    monkeypatch.setenv("R2C_MAX_MEGAPIXELS", "0.002")
    assert load_xray(path).size == (40, 48)


def test_codestream_size_must_match_the_header(tmp_path):
    path = _patch_siz(_dicom(tmp_path, JPEG2000Lossless), tmp_path / "other.dcm", 80, 96)
    with pytest.raises(ImageLoadError, match="declares 80x96 .* header says 40x48"):
        load_xray(path)


def test_infinite_rescale_is_an_error_not_a_black_image(tmp_path):
    path = _dicom(tmp_path, RescaleSlope="1e39", RescaleIntercept="0")
    with pytest.raises(ImageLoadError, match="not finite"):
        load_xray(path)


def test_absurd_window_falls_back_to_a_finite_display(tmp_path):
    path = _dicom(tmp_path, WindowCenter="1e39", WindowWidth="1e39")
    xray = load_xray(path)
    assert np.isfinite(xray.display).all() and xray.display.std() > 0


def test_nan_float_pixels_are_an_error(tmp_path):
    from PIL import Image

    values = np.ones((8, 8), np.float32)
    values[2, 3] = np.nan
    path = tmp_path / "nan.tif"
    Image.fromarray(values, mode="F").save(path)
    with pytest.raises(ImageLoadError, match="not finite"):
        load_xray(path)


def test_convert_does_not_write_a_black_png_for_non_finite_pixels(tmp_path):
    from core.cli.main import main

    bad = _dicom(tmp_path, RescaleSlope="1e39", RescaleIntercept="0", name="inf.dcm")
    good = _dicom(tmp_path, name="good.dcm")
    window = _dicom(tmp_path, WindowCenter="1e39", WindowWidth="1e39", name="window.dcm")
    out = tmp_path / "out"
    assert main(["convert", str(bad), str(good), str(window), "--out", str(out)]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "window.png"]
    import cv2

    assert cv2.imread(str(out / "window.png"), cv2.IMREAD_UNCHANGED).std() > 10  # not black


def test_unexpected_failures_do_not_leak_internal_text(tmp_path, monkeypatch):
    import core.imaging.load as load_module

    def broken(path):
        raise struct.error("unpack requires a buffer of 131072 bytes")

    monkeypatch.setattr(load_module, "_load", broken)
    with pytest.raises(ImageLoadError) as info:
        load_xray(tmp_path / "x.dcm")
    assert "unpack" not in info.value.reason and "error" not in info.value.reason.lower().split(":")[0]
    assert info.value.source == str(tmp_path / "x.dcm")


# -- isolation -------------------------------------------------------------------------------------


def abort_on_bomb(path: Path):
    """Child-side loader for the test: aborts like GDCM did on files named *bomb*."""
    if "bomb" in Path(path).name:
        os.abort()
    return load_xray(path)


def test_isolated_loader_survives_a_native_abort(tmp_path):
    good = _dicom(tmp_path)
    bomb = _dicom(tmp_path, name="bomb.dcm")
    loader = IsolatedLoader(timeout_s=60, load=abort_on_bomb)
    try:
        assert loader.load(good).size == (40, 48)
        with pytest.raises(ImageLoadError, match="crashed on this file \\(SIGABRT\\)") as info:
            loader.load(bomb)
        assert info.value.source == str(bomb)
        assert loader.load(good).size == (40, 48)  # a fresh child took over
    finally:
        loader.close()


def test_convert_goes_on_after_a_decoder_abort(tmp_path, monkeypatch, capsys):
    """A native abort used to end the whole batch; now that file fails and the files after it convert."""
    import core.imaging.isolated as isolated
    from core.cli.main import main

    bomb = _dicom(tmp_path, name="a_bomb.dcm")
    good = _dicom(tmp_path, name="b_good.dcm")
    loader = IsolatedLoader(timeout_s=60, load=abort_on_bomb)
    monkeypatch.setattr(isolated, "_shared", loader)
    monkeypatch.setenv("R2C_ISOLATE_DECODERS", "1")
    try:
        assert main(["convert", str(bomb), str(good), "--out", str(tmp_path / "out")]) == 1
    finally:
        loader.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_good.png"]
    err = capsys.readouterr().err
    assert f"{bomb}: the image decoder crashed on this file (SIGABRT)" in err and "Traceback" not in err


def test_isolated_loader_stops_a_file_that_takes_too_long(tmp_path):
    good = _dicom(tmp_path)
    loader = IsolatedLoader(timeout_s=0.001)  # the child cannot even start in time
    try:
        with pytest.raises(ImageLoadError, match="took longer than"):
            loader.load(good)
        loader.timeout_s = 60
        assert loader.load(good).size == (40, 48)
    finally:
        loader.close()


def test_isolated_loader_passes_errors_and_the_pixel_limit(tmp_path, monkeypatch):
    path = _dicom(tmp_path)
    loader = IsolatedLoader()
    try:
        xray = loader.load(path)
        np.testing.assert_array_equal(xray.display, load_xray(path).display)
        assert not xray.display.flags.writeable
        monkeypatch.setenv("R2C_MAX_MEGAPIXELS", "0.001")
        with pytest.raises(ImageLoadError, match="limit"):
            loader.load(path)
        (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
        with pytest.raises(ImageLoadError) as info:
            loader.load(tmp_path / "junk.png")
        assert info.value.source == str(tmp_path / "junk.png")
    finally:
        loader.close()


def test_png_header_walk_accepts_data_after_the_end(tmp_path):
    path = tmp_path / "trailer.png"
    path.write_bytes(_png(tmp_path) + b"trailing bytes after IEND")
    assert load_xray(path).size == (40, 48)


def test_jpeg2000_decodes_without_gdcm(tmp_path):
    """pylibjpeg-openjpeg, which raises instead of aborting, is the JPEG 2000 decoder."""
    from pydicom.uid import JPEG2000Lossless as uid

    from core.imaging.dicom import choose_plugin

    assert choose_plugin(uid) == "pylibjpeg"
    ds = pydicom.dcmread(io.BytesIO(_dicom(tmp_path, JPEG2000Lossless).read_bytes()))
    assert ds.file_meta.TransferSyntaxUID == uid

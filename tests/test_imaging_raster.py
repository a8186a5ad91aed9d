"""PNG/JPEG/TIFF loading, arrays in memory, folder scanning and the XRay API."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from core.errors import ImageLoadError
from core.imaging import (
    SUPPORTED_SUFFIXES,
    PatientInfo,
    Window,
    is_supported,
    iter_images,
    load_xray,
    load_xray_array,
)
from tests.imaging_fixtures import lung_mean, make_dataset, phantom, spine_mean, stored_pixels, write_dicom

DENSITY = phantom()
GRAY8 = np.rint(DENSITY * 255).astype(np.uint8)
GRAY16 = np.rint(DENSITY * 65535).astype(np.uint16)
LUMA = np.array([0.299, 0.587, 0.114])


def write_cv2(path, array):
    """Write through cv2.imencode (OpenCV expects BGR order for color)."""
    ok, data = cv2.imencode(path.suffix, array)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def colors_rgb() -> np.ndarray:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0], rgb[1], rgb[2], rgb[3] = (255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 120, 240)
    return rgb


# -- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_8bit_gray_is_shown_exactly_as_stored(tmp_path, suffix):
    xr = load_xray(write_cv2(tmp_path / f"x{suffix}", GRAY8))
    assert np.array_equal(xr.values, GRAY8.astype(np.float32))
    assert np.array_equal(xr.display, GRAY8.astype(np.float32) / 255)
    assert np.array_equal(xr.to_uint8(), GRAY8)
    assert xr.windows[0].name == "Full range" and xr.bits_stored == 8
    assert (xr.modality, xr.pixel_spacing, xr.invert, xr.photometric) == (None, None, False, "MONOCHROME2")
    assert xr.identifiers == PatientInfo()
    assert xr.size == (GRAY8.shape[1], GRAY8.shape[0])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_keeps_its_depth(tmp_path, suffix):
    data = GRAY16.copy()
    data[0, 0] = 65535
    xr = load_xray(write_cv2(tmp_path / f"x{suffix}", data))
    assert xr.bits_stored == 16 and xr.values.max() == 65535
    assert np.array_equal(xr.values, data.astype(np.float32))
    assert xr.windows[0].name == "Data range"
    low, high = float(data.min()), float(data.max())
    np.testing.assert_allclose(xr.display, (data - low) / (high - low), atol=1e-6)


def test_12bit_data_in_a_16bit_png_is_not_black(tmp_path):
    data = np.rint(DENSITY * 4095).astype(np.uint16)
    xr = load_xray(write_cv2(tmp_path / "x.png", data))
    assert xr.display.max() == 1.0 and xr.display.min() == 0.0
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3
    full = next(w for w in xr.windows if w.name == "Full range")
    assert (full.center, full.width) == (65535 / 2, 65535)


def test_rgb_png_becomes_luminance_in_the_right_channel_order(tmp_path):
    rgb = colors_rgb()
    xr = load_xray(write_cv2(tmp_path / "x.png", rgb[..., ::-1]))  # BGR for OpenCV
    np.testing.assert_allclose(xr.values, rgb.astype(np.float64) @ LUMA, atol=1e-3)
    assert xr.values[0, 0] == pytest.approx(0.299 * 255, abs=1e-3)  # red
    assert xr.photometric == "RGB"


def test_alpha_is_ignored(tmp_path):
    rgb = colors_rgb()
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, :2] = 255
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_allclose(load_xray(tmp_path / "rgba.png").values, rgb @ LUMA, atol=1e-3)
    Image.fromarray(np.dstack([GRAY8, np.full_like(GRAY8, 7)]), "LA").save(tmp_path / "la.png")
    assert np.array_equal(load_xray(tmp_path / "la.png").values, GRAY8.astype(np.float32))


def test_16bit_rgb_png(tmp_path):
    rgb = (colors_rgb().astype(np.uint16) * 257).astype(np.uint16)
    xr = load_xray(write_cv2(tmp_path / "x.png", rgb[..., ::-1]))
    assert xr.bits_stored == 16
    np.testing.assert_allclose(xr.values, rgb.astype(np.float64) @ LUMA, rtol=1e-6)


def test_jpeg(tmp_path):
    Image.fromarray(GRAY8).save(tmp_path / "x.jpg", quality=92)
    xr = load_xray(tmp_path / "x.jpg")
    assert xr.bits_stored == 8 and xr.size == (GRAY8.shape[1], GRAY8.shape[0])
    assert np.abs(xr.values - GRAY8).mean() < 2.0
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3


def test_jpeg_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 must come out upright."""
    marked = GRAY8.copy()
    marked[:10, :10] = 255  # top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    Image.fromarray(marked).save(tmp_path / "x.jpeg", quality=95, exif=exif)
    xr = load_xray(tmp_path / "x.jpeg")
    assert xr.size == (GRAY8.shape[0], GRAY8.shape[1])
    assert xr.values[:8, -8:].mean() > 240  # stored top-left is now top-right


def test_unicode_file_name(tmp_path):
    folder = tmp_path / "Röntgen 胸部"
    folder.mkdir()
    path = write_cv2(folder / "thorax_ß_肺.png", GRAY8)
    assert np.array_equal(load_xray(path).values, GRAY8.astype(np.float32))
    assert iter_images(tmp_path) == [path]


def test_data_after_the_end_marker_is_not_truncation(tmp_path):
    """Phones append trailers (e.g. a motion-photo video) after the JPEG's end marker."""
    jpeg = write_cv2(tmp_path / "x.jpg", GRAY8).read_bytes()
    (tmp_path / "trailer.jpg").write_bytes(jpeg + np.random.default_rng(3).bytes(20000))
    assert load_xray(tmp_path / "trailer.jpg").size == (GRAY8.shape[1], GRAY8.shape[0])


# -- bad rasters -----------------------------------------------------------------------------


def _expect_error(path, *words):
    with pytest.raises(ImageLoadError) as info:
        load_xray(path)
    assert str(path) in str(info.value)
    for word in words:
        assert word in info.value.reason.lower()
    return info.value


def test_multi_page_tiff(tmp_path):
    pages = [Image.fromarray(GRAY8), Image.fromarray(255 - GRAY8)]
    pages[0].save(tmp_path / "x.tif", save_all=True, append_images=pages[1:])
    _expect_error(tmp_path / "x.tif", "multi-page")


def test_bad_rasters(tmp_path, capfd):
    (tmp_path / "empty.png").write_bytes(b"")
    _expect_error(tmp_path / "empty.png", "empty")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(2).bytes(3000))
    _expect_error(tmp_path / "noise.png", "not a png")
    good_png = write_cv2(tmp_path / "good.png", GRAY8).read_bytes()
    (tmp_path / "cut.png").write_bytes(good_png[: len(good_png) // 2])
    _expect_error(tmp_path / "cut.png", "truncated")
    broken = bytearray(good_png)
    start = broken.index(b"IDAT") + 8
    broken[start : start + 200] = bytes(200)  # zlib stream destroyed, file otherwise complete
    (tmp_path / "corrupt.png").write_bytes(bytes(broken))
    _expect_error(tmp_path / "corrupt.png", "cannot be decoded")
    good_jpg = write_cv2(tmp_path / "good.jpg", GRAY8).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(good_jpg[: len(good_jpg) // 2])
    _expect_error(tmp_path / "cut.jpg", "truncated")
    good_tif = write_cv2(tmp_path / "good.tif", GRAY8).read_bytes()
    (tmp_path / "cut.tif").write_bytes(good_tif[:300])
    _expect_error(tmp_path / "cut.tif", "cannot be decoded")
    (tmp_path / "notes.txt").write_text("hello")
    _expect_error(tmp_path / "notes.txt", "not a dicom or image file")
    assert capfd.readouterr().err == ""  # libpng/libjpeg warnings kept off the terminal


# -- arrays in memory ----------------------------------------------------------------------


def test_load_xray_array():
    xr = load_xray_array(GRAY8, source="phantom")
    assert np.array_equal(xr.display, GRAY8 / np.float32(255)) and str(xr.source) == "phantom"
    deep = load_xray_array(GRAY16)
    assert deep.bits_stored == 16 and np.array_equal(deep.values, GRAY16.astype(np.float32))
    unit = load_xray_array(DENSITY.astype(np.float32))
    assert unit.windows[0].name == "Full range"
    np.testing.assert_allclose(unit.display, DENSITY, atol=1e-6)
    wide = load_xray_array(DENSITY * 3000 - 1000)
    assert wide.display.min() == 0.0 and wide.display.max() == 1.0
    rgb = load_xray_array(colors_rgb())
    np.testing.assert_allclose(rgb.values, colors_rgb() @ LUMA, atol=1e-3)
    with pytest.raises(ImageLoadError, match="<memory>"):
        load_xray_array(np.zeros(5))
    with pytest.raises(ImageLoadError):
        load_xray_array(np.zeros((0, 4), np.uint8))


def test_xray_render_and_to_uint8():
    xr = load_xray_array(GRAY8)
    np.testing.assert_allclose(xr.render(invert=True), 1 - GRAY8 / 255, atol=1e-7)
    narrow = xr.render(Window(100, 51, "narrow", "LINEAR"))
    assert narrow[GRAY8 <= 74].max() == 0.0 and narrow[GRAY8 >= 125].min() == 1.0
    levels = load_xray_array(np.array([[0.0, 0.6 / 255, 0.4 / 255, 254.7 / 255, 1.0]]))
    assert levels.to_uint8().tolist() == [[0, 1, 0, 255, 255]]  # rounded, not truncated
    with pytest.raises(ValueError):
        Window(0, 0, "bad")


# -- folder scanning -------------------------------------------------------------------------


def test_is_supported_and_iter_images(tmp_path):
    dicom = make_dataset(stored_pixels(DENSITY, 12), 12)
    write_dicom(dicom, tmp_path / "a.dcm")
    write_cv2(tmp_path / "B.PNG", GRAY8)
    (tmp_path / "sub").mkdir()
    write_cv2(tmp_path / "sub" / "c.tif", GRAY8)
    write_dicom(make_dataset(stored_pixels(DENSITY, 12), 12), tmp_path / "sub" / "1.2.840.99.1")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "random").write_bytes(b"\x01\x02" * 100)
    write_cv2(tmp_path / ".hidden.png", GRAY8)
    (tmp_path / ".cache").mkdir()
    write_cv2(tmp_path / ".cache" / "d.png", GRAY8)

    expected = sorted(
        [tmp_path / "a.dcm", tmp_path / "B.PNG", tmp_path / "sub" / "c.tif", tmp_path / "sub" / "1.2.840.99.1"]
    )
    assert iter_images(tmp_path) == expected
    assert iter_images(tmp_path, recursive=False) == sorted([tmp_path / "a.dcm", tmp_path / "B.PNG"])
    assert not is_supported(tmp_path / "notes.txt") and not is_supported(tmp_path / "random")
    assert not is_supported(tmp_path / "sub") and not is_supported(tmp_path / "missing.png")
    assert load_xray(tmp_path / "sub" / "1.2.840.99.1").modality == "CR"
    assert set(SUPPORTED_SUFFIXES) == {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
    with pytest.raises(ImageLoadError, match="folder not found"):
        iter_images(tmp_path / "nowhere")

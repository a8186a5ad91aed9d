"""DICOM loading on files the tests write themselves: bit depths, display chain, codecs, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import apply_voi_lut
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from core.errors import ImageLoadError
from core.imaging import Window, load_xray
from tests.imaging_fixtures import (
    lung_mean,
    make_dataset,
    phantom,
    spine_mean,
    stored_pixels,
    transfer_syntax_of,
    write_bare_dicom,
    write_dicom,
)

DENSITY = phantom()


def linear(x: float, c: float, w: float) -> float:
    """DICOM PS3.3 C.11.2.1.2.1, output range [0, 1]."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 1.0
    return (x - (c - 0.5)) / (w - 1) + 0.5


def linear_exact(x: float, c: float, w: float) -> float:
    """DICOM PS3.3 C.11.2.1.3.2, output range [0, 1]."""
    if x <= c - w / 2:
        return 0.0
    if x > c + w / 2:
        return 1.0
    return (x - c) / w + 0.5


def sigmoid(x: float, c: float, w: float) -> float:
    """DICOM PS3.3 C.11.2.1.3.1, output range [0, 1]."""
    return 1.0 / (1.0 + math.exp(-4.0 * (x - c) / w))


# -- bit depths, signedness, rescale ------------------------------------------------------


@pytest.mark.parametrize(
    ("bits", "signed", "slope", "intercept"),
    [
        (8, False, 1.0, 0.0),
        (10, False, 1.0, 0.0),
        (12, False, 1.0, -1024.0),
        (12, True, 1.0, 0.0),
        (12, False, 2.5, -3000.0),
        (15, False, 1.0, 0.0),
        (16, False, 1.0, 0.0),
        (16, True, 0.5, 100.0),
    ],
)
def test_bit_depths_give_rescaled_values_and_right_polarity(tmp_path, bits, signed, slope, intercept):
    stored = stored_pixels(DENSITY, bits, signed)
    ds = make_dataset(stored, bits)
    if (slope, intercept) != (1.0, 0.0):
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))

    assert xr.bits_stored == bits
    assert xr.size == (DENSITY.shape[1], DENSITY.shape[0])
    np.testing.assert_allclose(xr.values, stored.astype(np.float64) * slope + intercept, atol=1e-3)
    assert xr.display.dtype == np.float32 and xr.display.min() >= 0.0 and xr.display.max() <= 1.0
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3
    assert {w.name for w in xr.windows} >= {"Automatic", "Data range", "Full range"}
    full = next(w for w in xr.windows if w.name == "Full range")
    low = -(2 ** (bits - 1)) if signed else 0
    high = low + 2**bits - 1
    assert (full.center - full.width / 2, full.center + full.width / 2) == pytest.approx(
        sorted((low * slope + intercept, high * slope + intercept))
    )
    # 8-bit without rescale is display-ready: shown as stored/255; deeper data gets the auto window.
    if bits == 8:
        assert xr.windows[0].name == "Full range"
        assert np.array_equal(xr.display, stored.astype(np.float32) / 255)
    else:
        assert xr.windows[0].name == "Automatic"


@pytest.mark.parametrize("signed", [False, True])
def test_bits_above_bits_stored_are_ignored(tmp_path, signed):
    """12 bits stored in 16 allocated: garbage in the top 4 bits (e.g. overlays) must not leak."""
    stored = stored_pixels(DENSITY, 12, signed)
    ds = make_dataset(stored, 12)
    raw = (stored.astype(np.int32) & 0x0FFF) | 0xA000
    ds.PixelData = raw.astype(np.uint16).tobytes()
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    assert np.array_equal(xr.values, stored.astype(np.float32))


# -- polarity -----------------------------------------------------------------------------

KNOWN = np.array([[0, 1000], [3000, 4095]], dtype=np.uint16)


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME1", None, True),
        ("MONOCHROME1", "INVERSE", True),  # same single inversion, not a second one
        ("MONOCHROME1", "IDENTITY", True),
    ],
)
def test_polarity_from_photometric_and_presentation_lut_shape(tmp_path, photometric, shape, inverted):
    ds = make_dataset(KNOWN, 12, photometric, WindowCenter=2048, WindowWidth=4096)
    if shape:
        ds.PresentationLUTShape = shape
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    voi = np.vectorize(lambda x: linear(x, 2048, 4096))(KNOWN.astype(np.float64))
    expected = 1.0 - voi if inverted else voi
    assert xr.invert is inverted
    np.testing.assert_allclose(xr.display, expected, atol=1e-6)
    np.testing.assert_allclose(xr.render(invert=False), voi, atol=1e-6)  # inversion after VOI


def test_monochrome1_chest_shows_lungs_dark(tmp_path):
    stored = stored_pixels(DENSITY, 12, monochrome1=True)  # MONOCHROME1: dense = low values
    xr = load_xray(write_dicom(make_dataset(stored, 12, "MONOCHROME1"), tmp_path / "x.dcm"))
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3
    assert spine_mean(xr.values) < lung_mean(xr.values)


# -- VOI: windows and LUTs ----------------------------------------------------------------

# Stored 12-bit values that land on and around the window edges once rescaled (2x - 100).
EDGE_STORED = np.array([[0, 549, 550, 551], [800, 1049, 1050, 1051], [1100, 1101, 2000, 4095]], np.uint16)
EDGE_VALUES = EDGE_STORED.astype(np.float64) * 2 - 100


@pytest.mark.parametrize(
    ("function", "formula"),
    [(None, linear), ("LINEAR", linear), ("LINEAR_EXACT", linear_exact), ("SIGMOID", sigmoid)],
)
def test_window_functions_match_the_standard_formulas(tmp_path, function, formula):
    c, w = 1500.0, 1001.0
    ds = make_dataset(EDGE_STORED, 12, RescaleSlope=2, RescaleIntercept=-100, WindowCenter=c, WindowWidth=w)
    if function:
        ds.VOILUTFunction = function
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    expected = np.vectorize(lambda x: formula(x, c, w))(EDGE_VALUES)
    assert xr.windows[0].function == (function or "LINEAR")
    np.testing.assert_allclose(xr.display, expected, atol=1e-6)
    if formula is linear:  # the edges themselves: 998 and 999.5 -> black, 2000 -> white
        assert xr.display[0, 1] == 0.0 and xr.display[1, 2] == 1.0 and xr.display[1, 1] < 1.0
        assert xr.display[0, 3] == pytest.approx((1002 - 1499.5) / 1000 + 0.5, abs=1e-6)


def test_several_windows_become_named_presets(tmp_path):
    ds = make_dataset(
        EDGE_STORED,
        12,
        RescaleSlope=2,
        RescaleIntercept=-100,
        WindowCenter=[1500, 400],
        WindowWidth=[1001, 200],
        WindowCenterWidthExplanation=["LUNG", "BONE"],
    )
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    assert [w.name for w in xr.windows[:2]] == ["LUNG", "BONE"]
    assert (xr.windows[1].center, xr.windows[1].width) == (400, 200)
    bone = np.vectorize(lambda x: linear(x, 400, 200))(EDGE_VALUES)
    np.testing.assert_allclose(xr.render(xr.windows[1]), bone, atol=1e-6)
    custom = Window(1000, 500, "custom", "LINEAR_EXACT")
    np.testing.assert_allclose(
        xr.render(custom, invert=True),
        1 - np.vectorize(lambda x: linear_exact(x, 1000, 500))(EDGE_VALUES),
        atol=1e-6,
    )


def _voi_lut_item(first: int, table: np.ndarray, bits: int, as_ow: bool) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(table), first, bits]
    if as_ow:
        item.add_new(0x00283006, "OW", table.astype("<u2").tobytes())
    else:
        item.add_new(0x00283006, "US", [int(v) for v in table])
    item.LUTExplanation = "GAMMA"
    return item


@pytest.mark.parametrize(("bits", "as_ow"), [(8, False), (16, False), (16, True)])
def test_voi_lut_sequence_is_used_when_there_is_no_window(tmp_path, bits, as_ow):
    first, count = 1000, 1024
    top = 2**bits - 1
    table = np.rint(top * (np.arange(count) / (count - 1)) ** 0.5).astype(np.uint16)
    stored = np.array([[0, 999, 1000, 1001], [1500, 2023, 2024, 4095]], np.uint16)
    ds = make_dataset(stored, 12)
    ds.VOILUTSequence = Sequence([_voi_lut_item(first, table, bits, as_ow)])
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))

    assert xr.windows[0].lut is not None and xr.windows[0].name == "GAMMA"
    expected = table[np.clip(stored.astype(int) - first, 0, count - 1)] / top
    np.testing.assert_allclose(xr.display, expected, atol=1e-6)
    if bits == 16:  # the same as pydicom's own VOI LUT step, scaled to [0, 1]; pydicom 3.0
        # indexes 8-bit LUTs through uint8 and wraps beyond 256 entries, so only 16 bit here
        np.testing.assert_allclose(xr.display, apply_voi_lut(stored, ds) / top, atol=1e-6)


def test_window_comes_before_voi_lut(tmp_path):
    table = np.arange(0, 4096, 16, dtype=np.uint16)
    ds = make_dataset(KNOWN, 12, WindowCenter=2048, WindowWidth=4096)
    ds.VOILUTSequence = Sequence([_voi_lut_item(0, table, 12, False)])
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    assert xr.windows[0].lut is None and xr.windows[1].lut is not None
    expected_lut = table[np.clip(KNOWN.astype(int), 0, 255)] / 4095
    np.testing.assert_allclose(xr.render(xr.windows[1]), expected_lut, atol=1e-6)


def test_automatic_window_ignores_padding_and_flat_border(tmp_path):
    stored = stored_pixels(DENSITY, 12)
    stored[:, :10] = 0  # blank collimator border
    stored[:5, :] = 4095  # padding, declared below
    ds = make_dataset(stored, 12, PixelPaddingValue=4095)
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    auto = xr.windows[0]
    anatomy = stored[5:, 10:].astype(np.float64)
    low, high = auto.center - auto.width / 2, auto.center + auto.width / 2
    assert low >= np.percentile(anatomy, 0.4) - 1 and low > 0
    assert high <= anatomy.max()
    data_range = next(w for w in xr.windows if w.name == "Data range")
    assert data_range.center + data_range.width / 2 == anatomy.max()  # padding excluded


def test_chest_presets_follow_the_screen_not_the_values():
    """Lung / mediastinum / bone sit on the film's own distribution; a MONOCHROME1 twin looks the same."""
    from core.imaging import render, to_uint8
    from core.imaging.presets import BONE, LUNG, MEDIASTINUM, chest_windows

    values = np.random.default_rng(0).gamma(2.0, 500.0, (200, 180)).astype(np.float32)
    m2 = {w.name: w for w in chest_windows(values, invert=False)}
    flipped = np.float32(5000) - values
    m1 = {w.name: w for w in chest_windows(flipped, invert=True)}
    assert list(m2) == [LUNG, MEDIASTINUM, BONE]
    lung, mediastinum, bone = m2[LUNG], m2[MEDIASTINUM], m2[BONE]
    # Lung stretches the dark values, mediastinum and bone the bright ones; bone is not clipped at the top.
    assert lung.center < mediastinum.center < bone.center
    assert lung.center - lung.width / 2 == pytest.approx(np.percentile(values, 0.5), rel=1e-4)
    assert bone.center + bone.width / 2 == pytest.approx(values.max())
    for name in m2:
        a = to_uint8(render(values, m2[name], False)).astype(int)
        b = to_uint8(render(flipped, m1[name], True)).astype(int)
        assert np.abs(a - b).max() <= 1, name


@pytest.mark.parametrize(("value", "text"), [(30000, "30000"), (-30000.4, "-30000"), (12345.678, "12346"),
                                             (42.123, "42.1"), (0.5, "0.5"), (1.0, "1"), (0.0, "0"),
                                             (1e-5, "0.00001"), (-0.0004567, "-0.000457")])
def test_window_figures_never_use_scientific_notation(value, text):
    from core.imaging.presets import format_number, window_label

    assert format_number(value) == text
    assert window_label(Window(15000, 30000)) == "W 30000 / L 15000"


# -- transfer syntaxes ---------------------------------------------------------------------

LOSSLESS = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLossless,
]


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda s: s.name)
def test_lossless_transfer_syntaxes_round_trip_exactly(tmp_path, syntax, signed):
    stored = stored_pixels(DENSITY, 12, signed)
    path = write_dicom(make_dataset(stored, 12, RescaleSlope=1, RescaleIntercept=-1024), tmp_path / "x.dcm", syntax)
    assert transfer_syntax_of(path) == syntax
    xr = load_xray(path)
    assert np.array_equal(xr.values, stored.astype(np.float32) - 1024)
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3


@pytest.mark.parametrize(
    ("syntax", "bits", "max_error", "mean_error"),
    [
        (JPEGLSNearLossless, 12, 2, 1.5),  # the encoder's stated bound
        (JPEG2000, 12, 41, 4),  # 1 % of the range
        (JPEGExtended12Bit, 12, 41, 4),
        (JPEGBaseline8Bit, 8, 12, 2),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else str(v),
)
def test_lossy_transfer_syntaxes_decode_close_to_the_original(tmp_path, syntax, bits, max_error, mean_error):
    stored = stored_pixels(DENSITY, bits)
    path = write_dicom(make_dataset(stored, bits), tmp_path / "x.dcm", syntax)
    assert transfer_syntax_of(path) == syntax
    xr = load_xray(path)
    error = np.abs(xr.values - stored.astype(np.float32))
    assert error.max() <= max_error
    assert error.mean() <= mean_error
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3


def test_compressed_monochrome1(tmp_path):
    stored = stored_pixels(DENSITY, 12, monochrome1=True)
    ds = make_dataset(stored, 12, "MONOCHROME1", PresentationLUTShape="INVERSE")
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm", JPEG2000Lossless))
    assert xr.invert and np.array_equal(xr.values, stored.astype(np.float32))
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3


def test_file_without_preamble_or_meta_loads(tmp_path):
    stored = stored_pixels(DENSITY, 10)
    path = write_bare_dicom(make_dataset(stored, 10, "MONOCHROME2"), tmp_path / "bare")
    assert path.read_bytes()[128:132] != b"DICM"
    xr = load_xray(path)
    assert np.array_equal(xr.values, stored.astype(np.float32))
    assert xr.modality == "CR"


def test_rgb_secondary_capture_becomes_luminance(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, :] = (255, 0, 0)
    rgb[1, :] = (0, 255, 0)
    rgb[2, :] = (0, 0, 255)
    rgb[3, :] = (200, 200, 200)
    xr = load_xray(write_dicom(make_dataset(rgb, 8, "RGB"), tmp_path / "x.dcm"))
    expected = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(xr.values, expected, atol=1e-3)
    np.testing.assert_allclose(xr.display, expected / 255, atol=1e-6)
    assert not xr.invert and xr.photometric == "RGB"


def test_ybr_jpeg_becomes_luminance(tmp_path):
    gray = np.rint(DENSITY * 255).astype(np.uint8)
    rgb = np.stack([gray, gray, gray], axis=-1)
    path = write_dicom(make_dataset(rgb, 8, "RGB"), tmp_path / "x.dcm", JPEGBaseline8Bit)
    xr = load_xray(path)
    assert xr.photometric == "YBR_FULL_422"
    assert np.abs(xr.values - gray).mean() < 2.0
    assert spine_mean(xr.display) > lung_mean(xr.display) + 0.3


# -- metadata -------------------------------------------------------------------------------


def test_identifiers_are_plain_strings_and_blinding_drops_them(tmp_path):
    ds = make_dataset(stored_pixels(DENSITY, 12), 12, PatientBirthDate="19500101", InstitutionName="General")
    xr = load_xray(write_dicom(ds, tmp_path / "x.dcm"))
    info = xr.identifiers
    assert info.patient_name == "Doe^Jane" and type(info.patient_name) is str
    assert (info.patient_id, info.birth_date, info.institution) == ("P-0001", "19500101", "General")
    assert info.sop_uid == ds.SOPInstanceUID and info.accession_number is None
    blind = xr.blinded()
    assert blind.identifiers.is_empty() and not xr.identifiers.is_empty()
    assert blind.values is xr.values and blind.display is xr.display
    assert not xr.values.flags.writeable and not xr.display.flags.writeable


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"PixelSpacing": [0.14, 0.15]}, (0.14, 0.15)),
        ({"ImagerPixelSpacing": [0.2, 0.2]}, (0.2, 0.2)),
        ({"PixelSpacing": [0, 0], "ImagerPixelSpacing": [0.1, 0.1]}, (0.1, 0.1)),
        ({"PixelSpacing": [0, 0]}, None),
        ({}, None),
    ],
)
def test_pixel_spacing(tmp_path, attributes, expected):
    ds = make_dataset(stored_pixels(DENSITY, 12), 12, **attributes)
    assert load_xray(write_dicom(ds, tmp_path / "x.dcm")).pixel_spacing == expected


# -- errors ---------------------------------------------------------------------------------


def _expect_error(path, *words):
    with pytest.raises(ImageLoadError) as info:
        load_xray(path)
    message = str(info.value)
    assert str(path) in message and info.value.source == str(path)
    for word in words:
        assert word in message.lower()
    assert "\n" not in message and len(message) < len(str(path)) + 120
    return info.value


def test_multi_frame_is_refused(tmp_path):
    ds = make_dataset(stored_pixels(DENSITY, 12), 12)
    ds.PixelData = ds.PixelData * 2
    ds.NumberOfFrames = 2
    _expect_error(write_dicom(ds, tmp_path / "x.dcm"), "multi-frame")


def test_no_pixel_data(tmp_path):
    ds = make_dataset(stored_pixels(DENSITY, 12), 12)
    del ds.PixelData
    _expect_error(write_dicom(ds, tmp_path / "x.dcm"), "no pixel data")


def test_zero_size(tmp_path):
    ds = make_dataset(stored_pixels(DENSITY, 12), 12)
    ds.Rows = 0
    _expect_error(write_dicom(ds, tmp_path / "x.dcm"), "zero size")


def test_unsupported_photometric(tmp_path):
    ds = make_dataset(stored_pixels(DENSITY, 12), 12)
    ds.PhotometricInterpretation = "HSV"
    _expect_error(write_dicom(ds, tmp_path / "x.dcm"), "unsupported photometric", "hsv")


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, JPEG2000Lossless], ids=lambda s: s.name)
def test_truncated_file(tmp_path, syntax, capfd):
    path = write_dicom(make_dataset(stored_pixels(DENSITY, 12), 12), tmp_path / "x.dcm", syntax)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    _expect_error(path, "truncated")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("syntax", "codec"),
    [(JPEG2000Lossless, "jpeg 2000"), (JPEGLSLossless, "jpeg-ls"), (JPEGLosslessSV1, "jpeg"), (RLELossless, "rle")],
    ids=lambda v: v.name if hasattr(v, "name") else v,
)
def test_corrupt_codestream_in_a_complete_file(tmp_path, syntax, codec, capfd):
    """Encapsulation intact, codestream cut short: the decoders' own errors become one line."""
    path = write_dicom(make_dataset(stored_pixels(DENSITY, 12), 12), tmp_path / "x.dcm", syntax)
    import pydicom

    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 3]])
    ds.save_as(path, enforce_file_format=True)
    error = _expect_error(path, codec, "cannot be decoded")
    assert error.reason.startswith(codec.upper() if codec != "jpeg-ls" else "JPEG-LS")
    assert capfd.readouterr().err == ""  # no decoder chatter on the terminal


def test_not_dicom(tmp_path):
    path = tmp_path / "noise.dcm"
    path.write_bytes(np.random.default_rng(1).bytes(4000))
    _expect_error(path, "not a dicom")
    text = tmp_path / "notes"
    text.write_text("just some notes, not an image\n" * 20)
    _expect_error(text, "not a dicom")


def test_missing_empty_and_folder(tmp_path):
    _expect_error(tmp_path / "missing.dcm", "not found")
    (tmp_path / "empty.dcm").write_bytes(b"")
    _expect_error(tmp_path / "empty.dcm", "empty")
    (tmp_path / "folder.dcm").mkdir()
    _expect_error(tmp_path / "folder.dcm", "folder")


def test_concurrent_loads_stay_quiet_and_restore_warnings_and_stderr(tmp_path, capfd):
    """Worker threads load at once: decoder noise muted meanwhile, everything restored after."""
    import os
    import threading
    import warnings

    good = write_dicom(make_dataset(stored_pixels(DENSITY, 12), 12), tmp_path / "good.dcm", JPEG2000Lossless)
    bad = tmp_path / "bad.dcm"
    data = good.read_bytes()
    bad.write_bytes(data[:-200] + bytes(200))  # codestream damaged at its end
    filters_before = list(warnings.filters)
    results: list[object] = []

    def work(path):
        for _ in range(3):
            try:
                results.append(load_xray(path).size)
            except ImageLoadError as exc:
                results.append(exc.reason)

    threads = [threading.Thread(target=work, args=(p,)) for p in (good, bad, good, bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count((80, 96)) == 6 and len(results) == 12
    assert list(warnings.filters) == filters_before
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"

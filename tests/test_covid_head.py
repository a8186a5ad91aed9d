"""COVID-19 heads: leave-one-source-out measurement, calibration, and the display rule."""

from __future__ import annotations

import numpy as np
import torch

from core.classifier_display import MIN_SHOWN_AUC, probability_display
from core.models import build_generator
from core.train.heads import (
    LinearHead,
    auc_with_interval,
    expected_calibration_error,
    film_features,
    fit_temperature,
    head_layer,
    head_state_keys,
    measure_and_fit,
)


def _confounded(signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Films from five sources: two hold only COVID-19, one only controls, two hold both.
    Feature 0 marks the COVID-only archives (the confound); feature 1 carries ``signal`` of disease."""
    rng = np.random.default_rng(seed)
    feats, truth, sources = [], [], []
    for source, n_pos, n_neg in [("covid-a", 60, 0), ("covid-b", 60, 0), ("controls", 0, 80),
                                 ("mixed-1", 40, 40), ("mixed-2", 30, 50)]:
        for label in [1] * n_pos + [0] * n_neg:
            archive = 1.0 if source.startswith("covid") else 0.0
            feats.append([archive + 0.1 * rng.standard_normal(), signal * label + rng.standard_normal(),
                          rng.standard_normal()])
            truth.append(label)
            sources.append(source)
    return np.array(feats), np.array(truth), sources


def test_a_head_that_learned_the_archive_measures_chance_on_unseen_sources() -> None:
    feats, truth, sources = _confounded(signal=0.0)
    _, report = measure_and_fit(feats, truth, sources, np.zeros(len(truth), bool))
    assert [r.source for r in report.per_source] == ["mixed-1", "mixed-2"]  # only sources with both classes
    assert abs(report.out_of_source_auc - 0.5) < 0.12
    assert report.ci95[0] < 0.5 < report.ci95[1]
    assert report.out_of_source_auc < MIN_SHOWN_AUC


def test_a_real_signal_is_found_on_unseen_sources_and_the_final_head_is_calibrated() -> None:
    feats, truth, sources = _confounded(signal=2.5)
    test = np.zeros(len(truth), bool)
    test[np.random.default_rng(2).choice(np.flatnonzero(np.array(sources) == "mixed-2"), 20, replace=False)] = True
    head, report = measure_and_fit(feats, truth, sources, test)
    assert report.out_of_source_auc > 0.85 and report.ci95[0] > 0.75
    assert report.test_split is not None and report.test_split["n"] == 20
    assert report.ece_after <= report.ece_before + 1e-9
    assert np.isfinite(head.logits(feats)).all()


def test_auc_interval_and_temperature() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 400)
    logits = (truth * 2 - 1) * 1.0 + rng.standard_normal(400)
    auc, low, high = auc_with_interval(logits, truth)
    assert low < auc < high and 0.8 < auc < 0.95
    assert auc_with_interval(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0, 0, 1, 1]))[0] == 1.0
    # calibrated logits made over-confident (x5) get a temperature near 5 and a smaller calibration error
    z = rng.normal(0, 1.5, 4000)
    outcome = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    t = fit_temperature(z * 5, outcome)
    assert 4.0 < t < 6.0
    before = expected_calibration_error(1 / (1 + np.exp(-z * 5)), outcome)
    after = expected_calibration_error(1 / (1 + np.exp(-z * 5 / t)), outcome)
    assert after < before


def test_a_fitted_head_is_installed_in_the_generator_and_read_back_from_its_features() -> None:
    torch.manual_seed(0)
    model = build_generator("operational", 1).eval()
    films = [np.random.default_rng(i).random((64, 64)).astype(np.float32) for i in range(3)]
    feats = film_features(model, films, progress=False)
    assert feats.shape == (3, head_layer(model).in_features)
    head = LinearHead(np.linspace(-1, 1, feats.shape[1]), 0.3)
    head.install(model)
    assert head_state_keys(model) == ("head.dense.weight", "head.dense.bias")
    from core.restore import to_model_input

    with torch.no_grad():
        _, probs = model(torch.from_numpy(to_model_input(films[0]))[None])
    expected = 1 / (1 + np.exp(-head.logits(feats[:1])))
    np.testing.assert_allclose(float(probs[0, 1]), float(expected[0]), rtol=1e-4)


def test_display_rule_shows_only_measured_reliable_probabilities() -> None:
    good = {"covid_head": {"out_of_source_auc": 0.82, "out_of_source_ci95": [0.74, 0.9]}}
    poor = {"covid_head": {"out_of_source_auc": 0.61, "out_of_source_ci95": [0.5, 0.72]}}
    shown = probability_display(0.81, good)
    assert shown.shown and "81%" in shown.text and "0.82" in shown.text
    assert "not for diagnosis" in shown.detail and "0.74-0.90" in shown.detail
    hidden = probability_display(0.81, poor)
    assert not hidden.shown and "81" not in hidden.text and hidden.csv_value() == ""
    assert "0.61" in hidden.detail and "below the 0.75" in hidden.detail
    forced = probability_display(0.81, poor, show_unreliable=True)
    assert forced.shown and "81%" in forced.text and "shown on request" in forced.detail
    never = probability_display(0.4, {})
    assert not never.shown and "never measured" in never.detail


def test_head_films_count_other_labels_of_extra_folders_as_not_covid(tmp_path) -> None:
    """The labelled folder keeps its own labels; an NIH-like extra folder gives "not COVID-19" films,
    drawn evenly over its labels up to the limit; a COVID-19 folder gives positives; only the
    labelled folder's held-out films are marked test."""
    import cv2

    from core.train.heads import classification_films

    def folder(name: str, rows: list[tuple[str, str]]):
        d = tmp_path / name
        d.mkdir()
        for file, _ in rows:
            cv2.imwrite(str(d / file), np.zeros((8, 8), np.uint8))
        (d / "labels.csv").write_text("file,label\n" + "".join(f"{f},{lab}\n" for f, lab in rows))
        return d

    labeled = folder("labeled", [("l0.png", "covid"), ("l1.png", "control")])
    nih = folder("nih", [(f"n{i}.png", "no_finding" if i % 4 else "pneumonia") for i in range(12)])
    extra_covid = folder("extra", [("e0.png", "covid"), ("e1.png", "covid")])
    items, truth, test = classification_films(labeled, [nih, extra_covid], {"l1.png", "n1.png"}, limit_per_folder=4)
    names = [it.name for it in items]
    assert names[:2] == ["l0.png", "l1.png"] and truth[:2] == [1, 0]
    from_nih = [it for it in items if it.path.parent == nih]
    assert len(from_nih) == 4 and sorted({it.raw_label for it in from_nih}) == ["no_finding", "pneumonia"]
    assert [t for it, t in zip(items, truth, strict=True) if it.path.parent == nih] == [0, 0, 0, 0]
    assert [t for it, t in zip(items, truth, strict=True) if it.path.parent == extra_covid] == [1, 1]
    assert list(test) == [name == "l1.png" for name in names]

"""The bundled restoration recipe: residual output, paired warm start, Task-GAN, pass choice, checkerboard."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.degrade import degrade
from core.models import ResidualRestorer, build_generator, wrap_output
from core.quality import checkerboard_ratio
from core.train.paired import PairedConfig, PairedData, PairedTrainer, _to_tensor
from tests.engine_helpers import chest_like

CPU = torch.device("cpu")


def films(n: int = 6, size: int = 96) -> list[np.ndarray]:
    return [cv2.resize(chest_like(seed=i), (size, size), interpolation=cv2.INTER_AREA) for i in range(n)]


def small_config(arch: str = "convolutional-light", q: int | None = None, **kw) -> PairedConfig:
    settings = dict(steps=60, patch=64, patches=4, identity_patches=1, stability_patches=2, films=1, film_every=2,
                    image_size=64, load_size=96, amp=False, lr=1e-3, checkpoint_every=10**6) | kw
    return PairedConfig(arch=arch, q=q, **settings)


@pytest.mark.parametrize(("arch", "q"), [("operational", 3), ("convolutional", None), ("task-unet", None)])
def test_residual_generator_starts_as_the_identity(arch: str, q: int | None) -> None:
    net = build_generator(arch, q).eval()
    restorer = ResidualRestorer(net).eval()
    restorer.zero_output()
    x = _to_tensor([films(1, 64)[0]])
    with torch.no_grad():
        y, logits = restorer(x)
    assert torch.allclose(y, x, atol=3e-4)  # the tone curve floors the gray scale at 1e-4
    assert logits.shape == (1, 2)


def test_residual_output_keeps_the_films_level() -> None:
    """The deep generator instance-normalises its first features (after reflect padding), so the
    correction ignores a brightness offset and the output carries it: y(x + b) = y(x) + b. The
    plain (absolute) output cannot: it maps both films to the same gray scale."""
    torch.manual_seed(0)
    net = build_generator("convolutional")
    with torch.no_grad():
        net.output_layer().weight.mul_(0.05)  # small corrections: no clipping at +-1
    x = _to_tensor([films(1, 64)[0]]) * 0.6
    residual, absolute = wrap_output(net, "residual").eval(), wrap_output(net, "absolute").eval()
    with torch.no_grad():
        y1, _ = residual(x)
        y2, _ = residual(x + 0.2)
        a1, _ = absolute(x)
        a2, _ = absolute(x + 0.2)
    assert not torch.allclose(y1, x, atol=1e-3)  # it does change the film
    assert torch.allclose(y2, y1 + 0.2, atol=1e-5)
    assert torch.allclose(a2, a1, atol=1e-4)  # the paper's output forgets the level


def test_unknown_output_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="output mode"):
        wrap_output(build_generator("convolutional-light"), "sideways")


def test_paired_steps_learn_to_restore(tmp_path: Path) -> None:
    """60 CPU steps on synthetic chests already bring degraded patches closer to the clean ones."""
    f = films()
    trainer = PairedTrainer(small_config(), PairedData(f, f, [0, 1] * 3), tmp_path, CPU)
    rng = np.random.default_rng(123)
    clean = [im[16:80, 16:80] for im in f]
    degraded = _to_tensor([degrade(c, rng).image for c in clean])
    target = _to_tensor(clean)

    def error() -> float:
        trainer.G.eval()
        with torch.no_grad():
            y, _ = trainer.G(degraded)
        trainer.G.train()
        return float((y - target).abs().mean())

    before = error()
    assert before == pytest.approx(float((degraded - target).abs().mean()), rel=1e-3)  # starts as the identity
    for _ in range(60):
        losses = trainer.train_step()
    assert error() < 0.97 * before
    assert set(losses) >= {"restore", "identity", "stability", "cls"}


def test_paired_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    f = films()
    data = PairedData(f, f, [0, 1] * 3)
    straight = PairedTrainer(small_config(steps=4), data, tmp_path / "a", CPU)
    straight.fit(progress=False)
    first = PairedTrainer(small_config(steps=4, checkpoint_every=2), data, tmp_path / "b", CPU)
    first.fit(max_steps=2, progress=False)
    resumed = PairedTrainer(small_config(steps=4, checkpoint_every=2), data, tmp_path / "b", CPU)
    assert resumed.resume() and resumed.step == 2
    resumed.fit(progress=False)
    for key, value in straight.net.state_dict().items():
        assert torch.allclose(resumed.net.state_dict()[key], value, atol=1e-6), key
    assert (tmp_path / "b" / "metrics.csv").read_text().count("\n") == 5  # header + 4 steps


def test_task_gan_trains_its_discriminator_and_task_network(tmp_path: Path) -> None:
    f = films()
    trainer = PairedTrainer(small_config("task-unet", film_every=1), PairedData(f, f, [0, 1] * 3), tmp_path, CPU)
    task_before = {k: v.clone() for k, v in trainer.net.task.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    losses = trainer.train_step()
    assert losses["feature_match"] > 0 and losses["d"] > 0 and losses["task_clean"] > 0
    assert any(not torch.equal(v, trainer.net.task.state_dict()[k]) for k, v in task_before.items())
    assert any(not torch.equal(v, trainer.D.state_dict()[k]) for k, v in d_before.items())


def test_unet_refuses_sizes_it_cannot_halve() -> None:
    net = build_generator("task-unet")
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 3, 100, 100))


def test_distributed_batch_must_split_evenly(tmp_path: Path) -> None:
    from core.errors import TrainingError
    from core.train.distributed import DistInfo

    assert DistInfo(1, 2).shard(4, "patches") == slice(2, 4)
    with pytest.raises(TrainingError, match="divisible by the number of processes"):
        DistInfo(0, 2).shard(3, "patches")


def test_checkerboard_ratio_sees_a_dot_grid_and_not_a_blur() -> None:
    img = cv2.GaussianBlur(cv2.resize(chest_like(seed=2), (256, 256), interpolation=cv2.INTER_AREA), (0, 0), 1.0)
    dots = img.copy()
    dots[::2, ::2] += 0.01
    assert checkerboard_ratio(img, img) == pytest.approx(1.0)
    assert checkerboard_ratio(dots, img) > 5
    assert checkerboard_ratio(cv2.GaussianBlur(img, (0, 0), 1.0), img) < 1


def test_pass_choice_keeps_clean_films_and_takes_the_best_gain() -> None:
    from core.train.publish import pick_passes

    gain = {"1": 1.0, "2": 2.0, "3": 2.5}
    assert pick_passes(gain, {"1": 40, "2": 36, "3": 31}, {"1": 1.0, "2": 1.0, "3": 1.0}) == 2
    assert pick_passes(gain, {"1": 40, "2": 36, "3": 34}, {"1": 1.0, "2": 1.0, "3": 1.3}) == 2
    assert pick_passes(gain, {"1": 30, "2": 29, "3": 28}, {"1": 1.0, "2": 1.0, "3": 1.0}) == 1


def test_independent_blend_is_reproducible_and_keeps_the_size() -> None:
    from core.train.evaluate import independent_blend

    img = chest_like(300, 260, seed=4)
    a = independent_blend(img, np.random.default_rng(1))
    b = independent_blend(img, np.random.default_rng(1))
    assert a.shape == img.shape and np.array_equal(a, b)
    assert float(np.abs(a - img).mean()) > 0.01


def test_paired_recipe_from_the_command_line_gives_a_residual_model(tmp_path: Path) -> None:
    from core.cli.main import main as cli
    from core.restore import Restorer
    from core.weights.model_file import read_manifest
    from tests.test_training import _tiny_labeled

    labeled = _tiny_labeled(tmp_path / "labeled")
    run = tmp_path / "runs" / "task-gan"
    assert cli(["train", "--recipe", "paired", "--arch", "task-unet", "--data", str(labeled), "--run", str(run),
                "--max-steps", "2", "--checkpoint-every", "1", "--device", "cpu"]) == 0
    model = run / "model" / "task-gan.safetensors"
    manifest = read_manifest(model)
    assert manifest.output_mode == "residual" and manifest.provenance["recipe"] == "paired"
    image = chest_like(90, 70, seed=5)
    result = Restorer(CPU).restore(image, weights=model, iterations=2)
    assert result.iterations == 2 and 0 <= result.covid_probability <= 1
    # Resuming continues the same run.
    assert cli(["train", "--recipe", "paired", "--arch", "task-unet", "--data", str(labeled), "--run", str(run),
                "--max-steps", "1", "--checkpoint-every", "1", "--device", "cpu"]) == 0
    assert read_manifest(model).provenance["step"] == 3


def test_paired_cyclegan_stage_starts_from_the_warm_start(tmp_path: Path) -> None:
    from core.train.gan import GanConfig, GanTrainer
    from tests.test_training import tiny_data

    warm = PairedTrainer(small_config(), PairedData(films(), films(), [0, 1] * 3), tmp_path / "a", CPU)
    warm.train_step()
    from core.weights.model_file import Manifest, save_model

    file = tmp_path / "warm.safetensors"
    save_model(file, warm.net.state_dict(), Manifest("r2c-cnn-light", "x", "generator", "convolutional-light",
                                                     output_mode="residual"))
    cfg = GanConfig(arch="convolutional-light", epochs=2, decay_epoch=1, load_size=72, crop_size=64, pool_size=3,
                    checkpoint_every=10**6, sample_every=0, recipe="paired-cyclegan", output_mode="residual",
                    paired_weight=10.0, init_from=str(file))
    gan = GanTrainer(cfg, tiny_data(), tmp_path / "b", CPU)
    for key, value in warm.net.state_dict().items():
        assert torch.equal(gan.net_A2B.state_dict()[key], value)
        assert torch.equal(gan.net_B2A.state_dict()[key], value)
    losses = gan.train_step()
    assert losses["paired"] > 0


@pytest.mark.parametrize(("arch", "q"), [("operational", 3), ("convolutional", None), ("task-unet", None)])
def test_balanced_upsampling_turns_flat_features_into_flat_output(arch: str, q: int | None) -> None:
    from core.models.upsampling import balance_model, transposed_layers

    net = build_generator(arch, q)
    layers = transposed_layers(net)
    assert layers, "every generator upsamples with a strided transposed convolution"

    def ripple(layer: torch.nn.Module) -> float:
        channels = layer.weight.shape[0] // getattr(layer, "q", 1)
        with torch.no_grad():
            y = layer(torch.full((1, channels, 8, 8), 0.7))
        return float(y[..., 4:-4, 4:-4].std(dim=(2, 3)).max())

    assert max(ripple(layer) for layer, _, _ in layers) > 1e-3  # random weights: a dot grid
    before = {k: v.clone() for k, v in net.state_dict().items()}
    balance_model(net)
    assert max(ripple(layer) for layer, _, _ in layers) < 1e-5
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(k.endswith("weight") for k in changed)  # only the transposed kernels move


def test_paired_training_keeps_the_upsampling_balanced(tmp_path: Path) -> None:
    from core.models.upsampling import transposed_layers

    f = films()
    trainer = PairedTrainer(small_config(), PairedData(f, f, [0, 1] * 3), tmp_path, CPU)
    for _ in range(3):
        trainer.train_step()
    (layer, _, _), = transposed_layers(trainer.net)
    w = layer.weight.detach()
    sums = [w[:, :, rows][:, :, :, cols].sum(dim=(2, 3)) for rows in ([0, 2], [1]) for cols in ([0, 2], [1])]
    assert float(w.abs().max()) > 0
    for s in sums[1:]:
        assert torch.allclose(s, sums[0], atol=1e-6)


def test_tone_curve_fitting_lowers_its_loss() -> None:
    from core.train.tone import ToneConfig, fit_tone_curve

    f = [chest_like(200, 180, seed=i) for i in range(5)]
    curve, history = fit_tone_curve(f, ToneConfig(steps=300, batch=8, lr=3e-3, jitter=0.0), progress=False)
    assert len(history) == 3 and history[-1] < 0.9 * history[0]


def test_psnr_tone_loss_is_minus_each_films_psnr_and_fits_a_curve() -> None:
    from core.quality import psnr
    from core.train.tone import ToneConfig, film_psnr_loss, fit_tone_curve

    rng = np.random.default_rng(0)
    clean = rng.random((2, 1, 32, 32)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, [[[[0.01]]], [[[0.1]]]], clean.shape), 0, 1).astype(np.float32)
    expected = -np.mean([psnr(clean[i, 0], noisy[i, 0]) for i in range(2)])
    got = film_psnr_loss(torch.from_numpy(noisy) * 2 - 1, torch.from_numpy(clean) * 2 - 1, floor=0.0)
    assert abs(float(got) - expected) < 1e-3  # the loss is minus the mean per-film PSNR
    # the floor caps the reward: a perfect film is worth 10 * log10(1 / floor) dB, no more
    assert abs(float(film_psnr_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), floor=1e-3)) + 30.0) < 1e-4
    f = [chest_like(200, 180, seed=i) for i in range(5)]
    _, history = fit_tone_curve(f, ToneConfig(steps=300, batch=8, lr=3e-3, jitter=0.0, loss="psnr",
                                              identity_weight=0.5, clean_floor=1e-3), progress=False)
    assert len(history) == 3 and history[-1] < history[0] - 0.5  # at least half a dB better


def test_tone_recipe_is_given_to_every_published_residual_variant(tmp_path: Path) -> None:
    import json

    from safetensors.torch import load_file

    from core.cli.main import main as cli
    from core.weights.model_file import load_state, read_manifest
    from tests.test_training import _tiny_labeled

    labeled = _tiny_labeled(tmp_path / "labeled")
    runs = tmp_path / "runs"
    assert cli(["train", "--recipe", "tone", "--data", str(labeled), "--run", str(runs / "tone"), "--steps", "20"]) == 0
    tone_file = runs / "tone" / "model" / "tone-curve.safetensors"
    assert json.loads(tone_file.with_suffix(".json").read_text())["steps"] == 20
    assert cli(["train", "--recipe", "tone", "--data", str(labeled), "--run", str(runs / "tone"), "--steps", "5"]) == 0
    assert json.loads(tone_file.with_suffix(".json").read_text())["steps"] == 25  # continued
    assert cli(["train", "--recipe", "paired", "--arch", "convolutional-light", "--data", str(labeled),
                "--run", str(runs / "r2c-cnn-light"), "--max-steps", "1", "--checkpoint-every", "1",
                "--device", "cpu"]) == 0
    out = tmp_path / "installed"
    assert cli(["publish", "--runs", str(runs), "--labeled", str(labeled), "--validation", str(labeled),
                "--out", str(out), "--device", "cpu"]) == 0
    model = out / "r2c-cnn-light.safetensors"
    manifest = read_manifest(model)
    assert manifest.provenance["tone_curve"]["steps"] == 25
    assert manifest.provenance["passes_choice"]["chosen"] == manifest.default_iterations
    state, _ = load_state(model)
    for key, value in load_file(str(tone_file)).items():
        assert torch.equal(state["tone." + key], value)
    assert "Restoration at each variant's default passes" in (out / "EVALUATION.md").read_text()


def test_tone_statistics_barely_move_with_noise() -> None:
    """Pooled statistics: noise must not look like an exposure change to the tone curve."""
    from core.models.residual import ToneCurve

    film = chest_like(256, 256, seed=3)
    noisy = np.clip(film + np.random.default_rng(0).normal(0, 0.05, film.shape), 0, 1).astype(np.float32)
    x, y = _to_tensor([film]), _to_tensor([noisy])
    pixel = (ToneCurve.statistics(x, pool=1, thumb=0) - ToneCurve.statistics(y, pool=1, thumb=0)).abs().sum()
    pooled = (ToneCurve.statistics(x, thumb=0) - ToneCurve.statistics(y, thumb=0)).abs().sum()
    assert pooled < 0.35 * pixel


def test_tone_curve_of_an_earlier_kind_runs_as_it_was_fitted() -> None:
    """Files from before the pooled statistics and the thumbnail load and give the same output."""
    from core.models.residual import LEGACY_STATS_POOL, STATS_POOL, THUMB, TONE_PREFIX, ToneCurve
    from core.restore import load_generator_state

    old = ToneCurve(hidden=32, thumb=0)
    with torch.no_grad():
        for p in old.parameters():
            p.normal_(0, 0.3)
    old.stats_pool.fill_(LEGACY_STATS_POOL)
    net = build_generator("convolutional-light")
    old_file = {**net.state_dict(), **{TONE_PREFIX + k: v for k, v in old.state_dict().items()
                                       if k not in ("stats_pool", "thumb")}}
    loaded = wrap_output(build_generator("convolutional-light"), "residual")
    assert (int(loaded.tone.stats_pool), int(loaded.tone.thumb)) == (STATS_POOL, THUMB)
    load_generator_state(loaded, old_file, "old.safetensors")
    assert (int(loaded.tone.stats_pool), int(loaded.tone.thumb)) == (LEGACY_STATS_POOL, 0)
    x = _to_tensor([chest_like(128, 128, seed=1)])
    expected = old(x, ToneCurve.statistics(x, pool=1, thumb=0))
    assert not torch.allclose(expected, x, atol=1e-3)  # the curve does something
    assert torch.allclose(loaded.tone(x, loaded.tone.film_statistics(x)), expected)


def test_detail_loss_ignores_tone_and_sees_noise() -> None:
    from core.train.paired import high_pass

    x = _to_tensor([chest_like(96, 96, seed=2)])
    assert torch.allclose(high_pass(x + 0.3), high_pass(x), atol=1e-5)  # a global offset is no detail
    noisy = x + 0.05 * torch.randn_like(x)
    assert (high_pass(noisy) - high_pass(x)).abs().mean() > 0.03


def test_tone_fitting_weighs_the_labelled_folder_against_a_large_extra_folder(tmp_path: Path) -> None:
    import json

    from core.cli.main import main as cli
    from tests.test_training import _tiny_labeled

    labeled = _tiny_labeled(tmp_path / "labeled")
    extra = _tiny_labeled(tmp_path / "extra", n=30)
    run = tmp_path / "tone"
    assert cli(["train", "--recipe", "tone", "--data", str(labeled), "--extra", str(extra), "--run", str(run),
                "--steps", "3", "--tone-jitter", "1"]) == 0
    record = json.loads((run / "model" / "tone-curve.json").read_text())
    assert 0 < record["own_films"] < record["films"]
    assert record["last_config"]["own_share"] == 0.5 and record["last_config"]["jitter"] == 1.0


def test_natural_tone_variation_is_mild_and_keeps_the_range() -> None:
    from core.quality import psnr
    from core.train.tone import natural_variation

    film = chest_like(128, 128, seed=4)
    outs = [natural_variation(film, np.random.default_rng(i)) for i in range(20)]
    assert all(o.shape == film.shape and o.min() >= 0 and o.max() <= 1 for o in outs)
    values = [psnr(film, o) for o in outs]
    assert min(values) > 15 and np.median(values) < 40  # a visible change, never a different film


def test_tone_curve_with_a_thumbnail_is_fitted_and_loaded_as_its_kind() -> None:
    from core.models.residual import TONE_PREFIX, file_state
    from core.restore import load_generator_state
    from core.train.tone import ToneConfig, fit_tone_curve

    curve, _ = fit_tone_curve([chest_like(120, 100, seed=i) for i in range(3)],
                              ToneConfig(steps=5, batch=4, thumb=8), progress=False)
    assert int(curve.thumb) == 8 and curve.mlp[0].in_features == curve.FEATURES + 64
    model = wrap_output(build_generator("convolutional-light"), "residual")
    state = {**model.net.state_dict(), **{TONE_PREFIX + k: v for k, v in curve.state_dict().items()}}
    loaded = wrap_output(build_generator("convolutional-light"), "residual")
    load_generator_state(loaded, state, "thumb.safetensors")
    assert int(loaded.tone.thumb) == 8
    assert all(torch.equal(a, b) for a, b in zip(file_state(loaded).values(), state.values(), strict=True))

"""Input-relative ("residual") output for restoration generators, with a global tone curve.

Every R2C-GAN generator normalises its features with instance norm right after the first
layer, so the plain-convolution variants (CNN, CNN*, Q=1) cannot know a film's brightness or
contrast: the paper's output maps every film to one canonical gray scale. A clean film whose
window differs from that scale comes back changed (the first bundled weights kept clean films
at only 20-29 dB), and an under-exposed film cannot be told from a normal one.

``ResidualRestorer`` splits restoration into the two things a film can need:

* a **tone curve** for the whole film, ``t' = gain * t**gamma + offset`` on the gray scale
  t in [0, 1], whose three parameters a small MLP (``ToneCurve``) reads off the film's gray-level
  quantiles: exposure and contrast errors are global, and on held-out films an oracle curve of
  this form recovers 11-17 dB of the PSNR that degradation costs;
* a **local correction** by the generator: ``y = clip(tone(x) + 0.5 * g(x), -1, 1)``
  (noise, blur, compression).

With the curve's last layer and the generator's output layer zero-initialised the restorer
starts as the identity, so training can only learn to remove what the paired data show to be
damage. The quantiles come from the whole film (training passes those of the film a patch was
cut from), never from a patch. The class head is untouched. This is a documented deviation
from the paper (model card); imported authors' checkpoints keep the paper's absolute output
(manifest ``output_mode = "absolute"``).

Model files of residual generators hold the generator's tensors under the authors' names plus
the curve's under ``tone.``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.models.generators import R2CGenerator

OUTPUT_MODES = ("absolute", "residual")
RESIDUAL_GAIN = 0.5
TONE_PREFIX = "tone."
# Statistics are read off the film averaged over STATS_POOL x STATS_POOL pixels: noise and mild blur
# then barely move the quantiles, so the curve answers exposure and contrast only (with the pixel
# quantiles, noisy or blurred films of good exposure had their tones changed: -1.4 dB on average).
STATS_POOL = 4
LEGACY_STATS_POOL = 1  # tone curves saved before the pooling (no ``stats_pool`` tensor)
# Side of a film thumbnail the curve may also read (0: none, the default). Measured on held-out films
# (docs in ToneCurve): a 16 x 16 thumbnail raised the mean gain but over-corrected mildly degraded
# films (blur, JPEG) by several dB, so the bundled recipe leaves it out; ``train --recipe tone
# --tone-thumbnail 16`` fits one.
THUMB = 0


class ToneCurve(nn.Module):
    """Film gray-level statistics -> (gamma, gain, offset) of a global tone curve (identity at start).

    Optionally (``thumb`` > 0) it also reads a ``thumb`` x ``thumb`` thumbnail of the film: whether a
    film is under-exposed or simply dark cannot be told from its histogram alone, but can from where
    the gray levels lie (lung fields, mediastinum, bone). On held-out films a 16 x 16 thumbnail raised
    the mean gain (+1.99 vs +1.14 dB on the test split) but damaged more films badly (worst five
    -10.1 vs -2.9 dB) and over-corrected blurred or compressed films of good exposure.
    """

    QUANTILES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
    FEATURES = len(QUANTILES) + 2  # quantiles, mean, standard deviation

    def __init__(self, hidden: int = 64, thumb: int = THUMB) -> None:
        super().__init__()
        self.register_buffer("stats_pool", torch.tensor(STATS_POOL, dtype=torch.int64))
        self.register_buffer("thumb", torch.tensor(thumb, dtype=torch.int64))
        self.mlp = nn.Sequential(nn.Linear(self.FEATURES + thumb * thumb, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    @staticmethod
    def upgrade_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A tone curve's tensors as this class loads them (older files lack ``stats_pool``/``thumb``)."""
        if "stats_pool" not in state:
            state = {**state, "stats_pool": torch.tensor(LEGACY_STATS_POOL, dtype=torch.int64)}
        if "thumb" not in state:
            state = {**state, "thumb": torch.tensor(0, dtype=torch.int64)}
        return state

    @classmethod
    def for_state(cls, state: dict[str, torch.Tensor]) -> ToneCurve:
        """An (untrained) curve of the kind ``state`` (upgraded) holds, ready to load it."""
        weight = state.get("mlp.0.weight")
        hidden = int(weight.shape[0]) if weight is not None else 64
        return cls(hidden=hidden, thumb=int(state["thumb"]))

    def same_kind(self, other: ToneCurve) -> bool:
        return (int(self.thumb), self.mlp[0].weight.shape) == (int(other.thumb), other.mlp[0].weight.shape)

    def film_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """``statistics`` as this curve was fitted to read them."""
        return self.statistics(x, int(self.stats_pool), int(self.thumb))

    @classmethod
    def statistics(cls, x: torch.Tensor, pool: int = STATS_POOL, thumb: int = THUMB) -> torch.Tensor:
        """N x (FEATURES + thumb^2) statistics of whole films in [-1, 1] (channel mean, averaged over
        ``pool``^2 pixels) on the [0, 1] gray scale: quantiles, mean, std, then the thumbnail."""
        t = (x.detach().float().mean(dim=1, keepdim=True) + 1.0) * 0.5
        if pool > 1 and min(t.shape[-2:]) >= 16 * pool:
            t = torch.nn.functional.avg_pool2d(t, pool)
        small = torch.nn.functional.adaptive_avg_pool2d(t, thumb).flatten(1) - 0.5 if thumb else None
        t = t.flatten(1)
        if t.shape[1] > 65536:  # quantiles of a subsample: same figures, bounded cost
            t = t[:, :: t.shape[1] // 65536 + 1]
        q = torch.quantile(t, torch.tensor(cls.QUANTILES, device=t.device), dim=1).T
        parts = [q, t.mean(dim=1, keepdim=True), t.std(dim=1, keepdim=True)]
        return torch.cat(parts + ([small] if small is not None else []), dim=1)

    def forward(self, x: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        p = torch.tanh(self.mlp(stats.float()))
        gamma = torch.exp(p[:, 0] * math.log(3.0))[:, None, None, None]  # 1/3 .. 3
        gain = torch.exp(p[:, 1] * math.log(2.0))[:, None, None, None]  # 1/2 .. 2
        offset = 0.3 * p[:, 2][:, None, None, None]
        t = ((x.float() + 1.0) * 0.5).clamp(1e-4, 1.0)
        return (2.0 * (gain * t.pow(gamma) + offset) - 1.0).to(x.dtype)


class ResidualRestorer(R2CGenerator):
    """``(clip(tone(x) + gain * g(x)), logits)``; see the module docstring."""

    def __init__(self, net: R2CGenerator, gain: float = RESIDUAL_GAIN) -> None:
        super().__init__()
        self.net, self.gain = net, gain
        self.tone = ToneCurve()

    def forward_logits(self, x: torch.Tensor, stats: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """``stats``: the whole film's ``ToneCurve.statistics`` when ``x`` is a patch of it."""
        base = self.tone(x, self.tone.film_statistics(x) if stats is None else stats)
        if getattr(self.net, "classifies_output", False):  # Task-GAN: the task network reads the result
            image = (base + self.gain * self.net.raw_image(x)).clamp(-1.0, 1.0)
            return image, self.net.classify(image)
        correction, logits = self.net.forward_logits(x)
        return (base + self.gain * correction).clamp(-1.0, 1.0), logits

    def tf_weight_layers(self) -> list[nn.Module]:
        return self.net.tf_weight_layers()

    def zero_output(self) -> None:
        """Start from the identity: the generator's last layer outputs 0 (tanh(0) = 0)."""
        layer = self.net.output_layer()
        with torch.no_grad():
            for p in layer.parameters():
                p.zero_()


def wrap_output(net: R2CGenerator, mode: str) -> R2CGenerator:
    """The generator as the app runs it for a model file's ``output_mode``."""
    if mode not in OUTPUT_MODES:
        raise ValueError(f"unknown output mode {mode!r}; expected one of {', '.join(OUTPUT_MODES)}")
    return ResidualRestorer(net) if mode == "residual" else net


def file_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a model file holds: the generator's own names, plus ``tone.*`` when residual."""
    if isinstance(model, ResidualRestorer):
        return {**model.net.state_dict(), **{TONE_PREFIX + k: v for k, v in model.tone.state_dict().items()}}
    return model.state_dict()


def split_file_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(generator tensors, tone-curve tensors) of a model file's state."""
    net = {k: v for k, v in state.items() if not k.startswith(TONE_PREFIX)}
    tone = {k[len(TONE_PREFIX):]: v for k, v in state.items() if k.startswith(TONE_PREFIX)}
    return net, tone


def call_generator(model: nn.Module, x: torch.Tensor, stats: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``forward_logits`` with the film statistics where the model uses them."""
    if isinstance(model, ResidualRestorer):
        return model.forward_logits(x, stats)
    return model.forward_logits(x)



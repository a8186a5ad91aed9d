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


class ToneCurve(nn.Module):
    """Film gray-level statistics -> (gamma, gain, offset) of a global tone curve (identity at start)."""

    QUANTILES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
    FEATURES = len(QUANTILES) + 2  # quantiles, mean, standard deviation

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(self.FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 3))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    @classmethod
    def statistics(cls, x: torch.Tensor) -> torch.Tensor:
        """N x FEATURES statistics of images in [-1, 1] (channel mean), on the [0, 1] gray scale."""
        t = ((x.detach().float().mean(dim=1) + 1.0) * 0.5).flatten(1)
        if t.shape[1] > 65536:  # quantiles of a subsample: same figures, bounded cost
            t = t[:, :: t.shape[1] // 65536 + 1]
        q = torch.quantile(t, torch.tensor(cls.QUANTILES, device=t.device), dim=1).T
        return torch.cat([q, t.mean(dim=1, keepdim=True), t.std(dim=1, keepdim=True)], dim=1)

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
        base = self.tone(x, ToneCurve.statistics(x) if stats is None else stats)
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



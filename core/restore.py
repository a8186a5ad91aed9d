"""Restoration: a displayed X-ray + a variant -> restored images after each pass + class probabilities.

Preprocessing follows the authors' test script: resize to 256x256 (no crop), replicate the
gray channel to 3, scale to [-1, 1]. We downsample with area interpolation rather than
TF's plain bilinear resize, because inputs here may be 2000+ px DICOMs, where bilinear
aliases badly; at the paper's 512 -> 256 the two differ only by slight smoothing.

Iterative restoration feeds each 3-channel output back in unchanged (x -> G(x) -> G(G(x))),
exactly like the authors' ``--saveImages`` loop. Each pass's image is mapped back for
display as the mean of its 3 channels, scaled to [0, 1].
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from core.device import pick_device
from core.errors import WeightsError
from core.models import R2CGenerator, ResidualRestorer, build_generator, split_file_state, wrap_output
from core.models.residual import ToneCurve
from core.preprocess import MODEL_INPUT, to_square
from core.variants import get_variant, weights_path
from core.weights.model_file import Manifest, load_into, load_state, read_manifest

log = logging.getLogger(__name__)

MAX_ITERATIONS = 10
Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class RestorationCancelled(Exception):
    """Raised inside a batch run when the caller's cancel callback says so."""


def to_model_input(image: np.ndarray, size: int = MODEL_INPUT) -> np.ndarray:
    """Display image (H x W float in [0, 1]) -> 3 x size x size float32 in [-1, 1]."""
    scaled = to_square(image, size) * 2.0 - 1.0
    return np.repeat(scaled[None], 3, axis=0)


def to_display(output: torch.Tensor) -> np.ndarray:
    """Generator output (3 x H x W in [-1, 1]) -> H x W float32 display image in [0, 1]."""
    gray = output.float().mean(dim=0).cpu().numpy()
    return np.clip((gray + 1.0) * 0.5, 0.0, 1.0).astype(np.float32)


@dataclass
class Restoration:
    """Result of N passes of one generator over one image."""

    variant_id: str
    images: list[np.ndarray]  # after pass 1..N, each MODEL_INPUT^2 float32 in [0, 1]
    probs: list[np.ndarray]  # softmax (control, COVID-19) of pass 1..N
    model_sha256: str | None = None

    @property
    def iterations(self) -> int:
        return len(self.images)

    @property
    def final(self) -> np.ndarray:
        return self.images[-1]

    @property
    def covid_probability(self) -> float:
        """COVID-19 probability from the first pass, i.e. the classifier seeing the input image."""
        return float(self.probs[0][1])


@dataclass
class LoadedGenerator:
    model: R2CGenerator
    manifest: Manifest
    path: Path
    device: torch.device
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_generator(
    variant_id: str | None = None, weights: str | Path | None = None, device: torch.device | None = None
) -> LoadedGenerator:
    """A generator ready for inference, from a variant's installed weights or an explicit file."""
    device = device or pick_device()
    if weights is None:
        if variant_id is None:
            raise WeightsError(None, "give a variant or a weights file")
        variant = get_variant(variant_id)
        found = weights_path(variant.id)
        if found is None:
            raise WeightsError(
                None,
                f"no trained weights installed for {variant.id} ({variant.display_name}); "
                f"train them (r2c-review train) or import the authors' checkpoint (r2c-review import-tf)",
            )
        weights = found
    path = Path(weights)
    manifest = read_manifest(path)
    if manifest.kind != "generator":
        raise WeightsError(path, f"holds a {manifest.kind}, not an R2C-GAN generator")
    if variant_id is not None:
        variant = get_variant(variant_id)
        if (variant.architecture, variant.q) != (manifest.architecture, manifest.q):
            raise WeightsError(path, f"holds {manifest.architecture} q={manifest.q}, not {variant.display_name}")
    state, manifest = load_state(path, manifest)
    model = generator_from_state(manifest.architecture, manifest.q, manifest.output_mode, state, path)
    model.eval().to(device)
    return LoadedGenerator(model, manifest, path, device)


def generator_from_state(architecture: str, q: int | None, output_mode: str, state: dict[str, torch.Tensor],
                         source: str | Path) -> R2CGenerator:
    """The generator as the app runs it (``output_mode`` applied) with a model file's tensors."""
    try:
        model = wrap_output(build_generator(architecture, q), output_mode)
    except ValueError as exc:
        raise WeightsError(source, str(exc)) from None
    load_generator_state(model, state, source)
    return model


def load_generator_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path,
                         require_tone: bool = True) -> None:
    """Load a model file's tensors into a bare or residual generator (see ``core.models.residual``);
    ``require_tone=False`` lets a residual generator start from a file of the paper's kind."""
    net_state, tone_state = split_file_state(state)
    if isinstance(model, ResidualRestorer):
        load_into(model.net, net_state, source)
        if tone_state:
            tone_state = ToneCurve.upgrade_state(tone_state)
            kind = ToneCurve.for_state(tone_state)
            if not kind.same_kind(model.tone):  # a curve of an earlier kind: run it as it was fitted
                model.tone = kind.to(model.tone.stats_pool.device)
            load_into(model.tone, tone_state, source)
        elif require_tone:
            raise WeightsError(source, "weights do not fit the architecture (missing tone.* of a residual model)")
    else:
        if tone_state:
            raise WeightsError(source, "weights do not fit the architecture (unexpected tone.* tensors)")
        load_into(model, net_state, source)


class Restorer:
    """Runs generators on batches of images; keeps loaded generators for reuse.

    Thread-safe: a worker thread may restore while another prefetches, each generator is
    guarded by its own lock.
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        self._loaded: dict[tuple[str | None, str | None], LoadedGenerator] = {}
        self._lock = threading.Lock()

    def generator(self, variant_id: str | None = None, weights: str | Path | None = None) -> LoadedGenerator:
        key = (variant_id, str(weights) if weights else None)
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load_generator(variant_id, weights, self.device)
            return self._loaded[key]

    def restore(
        self, image: np.ndarray, variant_id: str | None = None, iterations: int | None = None,
        weights: str | Path | None = None,
    ) -> Restoration:
        return self.restore_many([image], variant_id, iterations, weights)[0]

    def restore_many(
        self,
        images: Sequence[np.ndarray],
        variant_id: str | None = None,
        iterations: int | None = None,
        weights: str | Path | None = None,
        batch_size: int | None = None,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
    ) -> list[Restoration]:
        """Restore display images (H x W in [0, 1]); ``iterations`` defaults to the manifest's.

        ``batch_size`` defaults to 8 on a GPU and 1 on the CPU, where larger batches are slower
        per image (benchmarks/bench_generators.py: activations stop fitting in cache).
        """
        loaded = self.generator(variant_id, weights)
        batch_size = batch_size or (8 if loaded.device.type == "cuda" else 1)
        n_iter = iterations if iterations is not None else loaded.manifest.default_iterations
        if not 1 <= n_iter <= MAX_ITERATIONS:
            raise WeightsError(None, f"iterations must be between 1 and {MAX_ITERATIONS}, got {n_iter}")
        vid = variant_id or loaded.manifest.variant_id
        results: list[Restoration] = []
        for start in range(0, len(images), batch_size):
            if cancelled and cancelled():
                raise RestorationCancelled()
            chunk = images[start : start + batch_size]
            x = torch.from_numpy(np.stack([to_model_input(im) for im in chunk])).to(loaded.device)
            outs: list[list[np.ndarray]] = [[] for _ in chunk]
            probs: list[list[np.ndarray]] = [[] for _ in chunk]
            with loaded.lock, torch.inference_mode():
                for _ in range(n_iter):
                    x, p = loaded.model(x)
                    p_np = p.float().cpu().numpy()
                    for i in range(len(chunk)):
                        outs[i].append(to_display(x[i]))
                        probs[i].append(p_np[i])
            results += [Restoration(vid, o, pr, loaded.manifest.sha256) for o, pr in zip(outs, probs, strict=True)]
            if progress:
                progress(min(start + batch_size, len(images)), len(images))
        return results


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a display image to (width, height), e.g. a restoration back to its input's size."""
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    interp = cv2.INTER_AREA if w < image.shape[1] else cv2.INTER_CUBIC
    return np.clip(cv2.resize(image, (w, h), interpolation=interp), 0.0, 1.0).astype(np.float32)

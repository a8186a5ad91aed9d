"""Synthetic COVID-19-like films from normal films with the pix2pix synthesizer (research only).

The film is squashed to the model's 224 x 224 input as in Liang et al. (2020); the output is
the 224 x 224 synthetic film (the three output channels averaged to gray). Files are written
by ``core/exports/synthetic.py``, which marks every one as synthetic (file name, PNG text
chunk, DICOM descriptions and a synthetic patient identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from core.errors import WeightsError
from core.models.pix2pix import SYNTH_ARCH, SYNTH_ID, build_pix2pix_generator, inference_mode
from core.weights.model_file import Manifest, load_into, load_state, read_manifest

PNG_MARK_KEY = "Synthetic"


@dataclass
class Synthesizer:
    """A loaded synthesizer: ``Synthesizer.load()`` (the shipped model) or ``load(weights=FILE)``."""

    model: torch.nn.Module
    manifest: Manifest
    path: Path
    device: torch.device

    @classmethod
    def load(cls, weights: str | Path | None = None, device: torch.device | None = None) -> Synthesizer:
        from core.device import pick_device
        from core.variants import weights_path

        device = device or pick_device()
        if weights is None:
            weights = weights_path(SYNTH_ID)
            if weights is None:
                raise WeightsError(None, f"no synthesizer installed ({SYNTH_ID}.safetensors in resources/models); "
                                         "train one with r2c-review train-pix2pix")
        path = Path(weights)
        manifest = read_manifest(path)
        if manifest.kind != "synthesizer" or manifest.architecture != SYNTH_ARCH:
            raise WeightsError(path, f"holds a {manifest.kind} ({manifest.architecture}), not the pix2pix synthesizer")
        state, manifest = load_state(path, manifest)
        cfg = manifest.provenance.get("config", {})
        model = build_pix2pix_generator(int(cfg.get("base", 64)), int(cfg.get("depth", 5)),
                                        float(cfg.get("dropout", 0.5)))
        load_into(model, state, path)
        return cls(inference_mode(model.to(device)), manifest, path, device)

    @property
    def size(self) -> int:
        return int(self.manifest.input_size)

    @torch.no_grad()
    def synthesize(self, film: np.ndarray) -> np.ndarray:
        """A display-ready gray film (float in [0, 1], any size) -> the synthetic film, size x size in [0, 1]."""
        small = cv2.resize(np.asarray(film, np.float32), (self.size, self.size), interpolation=cv2.INTER_AREA)
        x = (torch.from_numpy(small)[None, None] * 2 - 1).repeat(1, 3, 1, 1).to(self.device)
        out = self.model(x).float().mean(dim=1)[0].cpu().numpy()
        return np.clip((out + 1) / 2, 0.0, 1.0).astype(np.float32)

    def describe(self, source_name: str) -> str:
        from core.exports.synthetic import synthetic_description

        return synthetic_description(self.manifest.display_name, self.manifest.sha256, source_name)


def synthesize_files(inputs: list[Path], out: Path, weights: Path | None = None, fmt: str = "png",
                     device: torch.device | None = None) -> list[Path]:
    """Synthesize every film of ``inputs`` (files or folders) into ``out``; returns the files written."""
    from core.exports.synthetic import synthetic_name, write_synthetic_dicom, write_synthetic_png
    from core.imaging import load_xray
    from core.imaging.load import iter_images

    files: list[Path] = []
    for p in inputs:
        files.extend(iter_images(p) if Path(p).is_dir() else [Path(p)])
    synth = Synthesizer.load(weights, device)
    written = []
    for path in files:
        xray = load_xray(path)
        pixels = synth.synthesize(xray.display)
        description = synth.describe(path.name)
        if fmt == "dicom":
            written.append(write_synthetic_dicom(out / synthetic_name(path, ".dcm"), pixels, description,
                                                 modality=xray.modality))
        else:
            written.append(write_synthetic_png(out / synthetic_name(path, ".png"), pixels, description))
    return written


def is_marked_synthetic(path: str | Path) -> bool:
    """Whether a file says it is synthetic: its name, a PNG ``Synthetic`` text chunk, or DICOM descriptions."""
    from core.exports.synthetic import MARK

    path = Path(path)
    if MARK.lower() in path.name.lower():
        return True
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as im:
                return str(im.info.get(PNG_MARK_KEY, "")).lower() == "yes"
        from core.exports.source import source_header

        ds = source_header(path)
        if ds is not None:
            text = " ".join(str(ds.get(k, "")) for k in ("DerivationDescription", "ImageComments", "SeriesDescription"))
            return MARK in text
    except OSError:
        return False
    return False

"""What an export holds: a restoration's pixels, how they were made, and the film they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from core.imaging.xray import PatientInfo

if TYPE_CHECKING:
    from core.imaging import XRay

SOFTWARE = "R2C Review"
Resolution = Literal["native", "model"]


@dataclass(frozen=True)
class RestoredImage:
    """A restoration ready to export, with the source's size, spacing and identity.

    ``pixels`` are at the film's own size (``resolution="native"``, guided upsampling) or the
    generator's 256 x 256 output (``"model"``); :func:`export_pixels` gives the matrix that is
    written, always at the film's aspect ratio.
    """

    pixels: np.ndarray  # H x W float32 in [0, 1]
    variant_id: str
    model_name: str  # e.g. "R2C-GAN (Q=1)"
    iterations: int
    model_sha256: str | None
    source: Path
    source_size: tuple[int, int]  # (width, height) of the original
    source_spacing: tuple[float, float] | None  # (row, column) mm
    source_modality: str | None
    identifiers: PatientInfo = field(default_factory=PatientInfo)
    resolution: Resolution = "native"

    @classmethod
    def from_xray(cls, xray: XRay, pixels: np.ndarray, variant_id: str, model_name: str, iterations: int,
                  model_sha256: str | None, resolution: Resolution = "native") -> RestoredImage:
        return cls(pixels, variant_id, model_name, iterations, model_sha256, xray.source, xray.size,
                   xray.pixel_spacing, xray.modality, xray.identifiers, resolution)

    @property
    def derivation(self) -> str:
        passes = "1 pass" if self.iterations == 1 else f"{self.iterations} passes"
        sha = f", model sha256 {self.model_sha256[:12]}" if self.model_sha256 else ""
        how = ("carried to the film's resolution by guided upsampling" if self.resolution == "native"
               else "at the model's resolution")
        return f"Restored with {self.model_name} ({self.variant_id}), {passes}{sha}, {how}; {SOFTWARE}"[:1024]


def export_shape(source_size: tuple[int, int], pixels_shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) written: the film's own, or for a model-resolution result the film's aspect
    ratio with the result's longer side (a 256 x 256 output of a 512 x 422 film -> 256 x 211)."""
    w, h = source_size
    if pixels_shape == (h, w):
        return h, w
    long_side = max(pixels_shape)
    if h >= w:
        return long_side, max(1, round(long_side * w / h))
    return max(1, round(long_side * h / w)), long_side


def export_pixels(image: RestoredImage) -> np.ndarray:
    """The restoration at the film's aspect ratio (H x W float32 in [0, 1])."""
    h, w = export_shape(image.source_size, image.pixels.shape)
    pixels = np.asarray(image.pixels, np.float32)
    if pixels.shape != (h, w):
        interp = cv2.INTER_AREA if h * w < pixels.size else cv2.INTER_CUBIC
        pixels = cv2.resize(pixels, (w, h), interpolation=interp)
    return np.clip(pixels, 0.0, 1.0)


def export_spacing(image: RestoredImage, shape: tuple[int, int]) -> tuple[float, float] | None:
    """(row, column) spacing in mm of a matrix of ``shape`` covering the whole film (equal when
    the source's was: the aspect ratio is kept)."""
    if image.source_spacing is None:
        return None
    w, h = image.source_size
    return image.source_spacing[0] * h / shape[0], image.source_spacing[1] * w / shape[1]


def quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    """[0, 1] -> uint8 (0..255) or uint16 (0..65535), rounded to nearest."""
    if bits == 8:
        return np.rint(np.clip(pixels, 0, 1) * 255.0).astype(np.uint8)
    if bits == 16:
        return np.rint(np.clip(pixels, 0, 1) * 65535.0).astype(np.uint16)
    raise ValueError(f"bit depth must be 8 or 16, got {bits}")

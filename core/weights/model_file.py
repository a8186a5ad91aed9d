"""Model files: safetensors weights plus a JSON manifest, never pickle.

A model file ``NAME.safetensors`` carries its manifest twice:

* inside the safetensors header (``__metadata__["r2c_manifest"]``), so a lone file still
  says what architecture it holds; and
* beside it as ``NAME.json``, with the file's sha256 added, so that a truncated, swapped
  or edited weights file is caught before it is used.

A model file without that sha256 (no sidecar, or ``"sha256": null``) is refused unless the
user explicitly allows unsigned models (``--allow-unsigned-models`` or
``R2C_ALLOW_UNSIGNED_MODELS=1``); the rule is the same for shipped models, ``--weights`` and
``R2C_MODELS_DIR``. A matching hash only proves the file is the one its manifest names, so the
tensors are checked too: floating-point weights must be finite and of the manifest's dtype.

Loading never unpickles anything: safetensors holds raw tensors only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.errors import R2CError, WeightsError, os_reason

MANIFEST_KEY = "r2c_manifest"
ALLOW_UNSIGNED_ENV = "R2C_ALLOW_UNSIGNED_MODELS"
_FLOAT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_INT_DTYPES = (torch.int64, torch.int32)  # BatchNorm's num_batches_tracked
FORMAT_VERSION = 1
KINDS = ("generator", "segmenter", "synthesizer")  # synthesizer: pix2pix synthetic films, never a restoration


@dataclass
class Manifest:
    """What a model file holds and where it came from (the model card's machine-readable part)."""

    variant_id: str
    display_name: str
    kind: str  # "generator", "segmenter" or "synthesizer" (pix2pix synthetic films, core/synthesize.py)
    architecture: str  # generator: operational / convolutional / convolutional-light; segmenter: unet-densenet121
    q: int | None = None
    default_iterations: int = 1
    input_size: int = 256
    dtype: str = "float32"
    # "absolute": the generator's tanh output is the image (the paper; imported checkpoints).
    # "residual": it is a correction relative to the input (core/models/residual.py).
    output_mode: str = "absolute"
    provenance: dict[str, Any] = field(default_factory=dict)  # source, data, command, epochs, hardware, metrics
    sha256: str | None = None  # of the .safetensors file; only in the sidecar
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | Path) -> Manifest:
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise WeightsError(source, f"manifest is incomplete: {exc}") from None
        if manifest.kind not in KINDS:
            raise WeightsError(source, f"manifest kind {manifest.kind!r} is not one of {', '.join(KINDS)}")
        if manifest.format_version > FORMAT_VERSION:
            raise WeightsError(source, f"model file format {manifest.format_version} is newer than this app supports")
        return manifest


def unsigned_models_allowed() -> bool:
    """Whether the user explicitly allowed model files without a sha256 (``R2C_ALLOW_UNSIGNED_MODELS=1``)."""
    return os.environ.get(ALLOW_UNSIGNED_ENV, "").strip().lower() in ("1", "yes", "true", "on")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_model(path: str | Path, state: dict[str, torch.Tensor], manifest: Manifest, half: bool = False) -> Manifest:
    """Write weights and manifest atomically; returns the manifest with its sha256 filled in."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsError(path, "model files must end in .safetensors")
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in state.items()}
    manifest = dataclasses.replace(manifest, dtype=str(dtype).removeprefix("torch."), sha256=None)
    staged = stage_safetensors(path, tensors, {MANIFEST_KEY: json.dumps(manifest.to_json(), sort_keys=True)})
    manifest = dataclasses.replace(manifest, sha256=sha256_of(staged))
    side = sidecar_path(path)
    side_tmp = side.with_name(side.name + ".tmp")
    try:  # both files are written before either is renamed: a failure leaves the installed pair as it was
        side_tmp.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        for leftover in (side_tmp, staged):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
        raise WeightsError(side, f"cannot write the manifest ({os_reason(exc)})") from None
    os.replace(staged, path)
    os.replace(side_tmp, side)
    return manifest


def stage_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                      error: type[R2CError] = WeightsError) -> Path:
    """Write ``tensors`` next to ``path`` as ``<name>.tmp`` and return it, for the caller to rename.
    A failed write (a full disk, say) leaves no partial file and is raised as ``error`` naming ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)  # safetensors creates 0600; model files are meant to be shared
    except (OSError, SafetensorError) as exc:
        tmp.unlink(missing_ok=True)
        raise error(path, f"cannot write the file ({os_reason(exc)})") from None
    return tmp


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                      error: type[R2CError] = WeightsError) -> None:
    """Write ``tensors`` to ``path`` whole or not at all: the old file stays until the new one is complete."""
    os.replace(stage_safetensors(path, tensors, metadata, error), path)


def read_manifest(path: str | Path, verify: bool = True) -> Manifest:
    """The manifest of a model file; with ``verify``, checks the sidecar's sha256."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "model file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(path, f"not a readable safetensors file ({exc})") from None
    if MANIFEST_KEY not in meta:
        raise WeightsError(path, "safetensors file has no R2C Review manifest (import TF checkpoints with import-tf)")
    try:
        embedded = Manifest.from_json(json.loads(meta[MANIFEST_KEY]), path)
    except json.JSONDecodeError:
        raise WeightsError(path, "embedded manifest is not valid JSON") from None
    side = sidecar_path(path)
    unsigned_hint = f"give --allow-unsigned-models or set {ALLOW_UNSIGNED_ENV}=1 to use it anyway"
    if not side.is_file():
        if verify and not unsigned_models_allowed():
            raise WeightsError(path, f"has no manifest {side.name} with its sha256, so it cannot be verified; "
                                     f"unsigned model files are refused ({unsigned_hint})")
        return embedded
    try:
        sidecar = Manifest.from_json(json.loads(side.read_text()), side)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise WeightsError(side, "manifest is not valid JSON") from None
    except OSError as exc:
        raise WeightsError(side, f"manifest cannot be read ({exc.strerror or exc})") from None
    if verify:
        if not sidecar.sha256:
            if not unsigned_models_allowed():
                raise WeightsError(side, f"manifest gives no sha256 for {path.name}, so the weights cannot be "
                                         f"verified; unsigned model files are refused ({unsigned_hint})")
        elif not isinstance(sidecar.sha256, str) or len(sidecar.sha256) != 64:
            raise WeightsError(side, "manifest's sha256 is not a sha256 digest (64 hexadecimal digits)")
        elif sidecar.sha256.lower() != (actual := sha256_of(path)):
            raise WeightsError(path, f"sha256 {actual[:12]}… does not match its manifest ({sidecar.sha256[:12]}…): "
                                     "the file is corrupt or was modified")
    for attr in ("kind", "architecture", "q", "variant_id"):
        if getattr(sidecar, attr) != getattr(embedded, attr):
            raise WeightsError(path, f"manifest {side.name} says {attr}={getattr(sidecar, attr)!r}, "
                                     f"the weights say {getattr(embedded, attr)!r}")
    return sidecar


def load_state(path: str | Path, manifest: Manifest | None = None) -> tuple[dict[str, torch.Tensor], Manifest]:
    """Tensors (as float32) and the verified manifest of a model file."""
    path = Path(path)
    manifest = manifest or read_manifest(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(path, f"cannot read tensors ({exc})") from None
    check_tensors(path, state, manifest)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, manifest


def check_tensors(path: str | Path, state: dict[str, torch.Tensor], manifest: Manifest) -> None:
    """Weights of the manifest's dtype and finite: a NaN model gives black images and p = nan."""
    expected = _FLOAT_DTYPES.get(manifest.dtype)
    if expected is None:
        raise WeightsError(path, f"manifest dtype {manifest.dtype!r} is not one of {', '.join(_FLOAT_DTYPES)}")
    if not state:
        raise WeightsError(path, "holds no tensors")
    for key, tensor in state.items():
        if tensor.is_floating_point():
            if tensor.dtype != expected:
                raise WeightsError(path, f"tensor {key} is {str(tensor.dtype).removeprefix('torch.')}, "
                                         f"the manifest says {manifest.dtype}")
            if not bool(torch.isfinite(tensor).all()):
                raise WeightsError(path, f"tensor {key} holds NaN or infinite values: the weights are corrupt")
        elif tensor.dtype not in _INT_DTYPES:
            raise WeightsError(path, f"tensor {key} has unexpected type {str(tensor.dtype).removeprefix('torch.')}")


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """``load_state_dict`` with a user-facing error when keys or shapes do not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise WeightsError(source, f"weights do not fit the architecture ({detail})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise WeightsError(source, f"weights do not fit the architecture ({key}: {tuple(tensor.shape)} "
                                       f"vs {tuple(expected[key].shape)})")
    model.load_state_dict(state)

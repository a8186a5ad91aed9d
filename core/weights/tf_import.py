"""Turn the authors' TensorFlow checkpoints into state dicts of our PyTorch models.

Keys look like ``G_A2B/layer_with_weights-N/<attr>/.ATTRIBUTES/VARIABLE_VALUE`` (or
``.../layer_with_weights-N/all_layers/<i>/<attr>/...`` for operational layers), where N
counts weighted layers in Keras ``model.layers`` order; each model's
``tf_weight_layers()`` gives that order. A ``train.py`` checkpoint also holds G_B2A, both
discriminators and Adam slots; only the chosen root is read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import CheckpointImportError
from core.models import build_discriminator, build_generator, check_arch
from core.models.layers import InstanceNorm, OperationalConv2d, OperationalConvTranspose2d
from core.weights.tf_checkpoint import TFCheckpoint

_KEY = re.compile(
    r"^(?P<root>[^/]+)/layer_with_weights-(?P<n>\d+)/(?:all_layers/(?P<i>\d+)/)?(?P<attr>kernel|bias|gamma|beta)"
    r"/\.ATTRIBUTES/VARIABLE_VALUE$"
)


def _group(ckpt: TFCheckpoint, root: str) -> dict[int, dict[str, dict[int, str]]]:
    """N -> attr -> inner index (0 for plain layers) -> full key, for one root object."""
    groups: dict[int, dict[str, dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    for name in ckpt.names():
        if ".OPTIMIZER_SLOT" in name:
            continue
        m = _KEY.match(name)
        if m and m.group("root") == root:
            groups[int(m.group("n"))][m.group("attr")][int(m.group("i") or 0)] = name
    return groups


def _describe_roots(ckpt: TFCheckpoint) -> str:
    roots = sorted({n.split("/", 1)[0] for n in ckpt.names() if "/layer_with_weights-" in n})
    return ", ".join(roots) or "none"


def _infer_q(groups: dict[int, dict[str, dict[int, str]]]) -> int:
    first = groups.get(0, {}).get("kernel", {})
    return max(len(first), 1)


def _stack(ckpt: TFCheckpoint, keys: dict[int, str], what: str) -> list[np.ndarray]:
    if sorted(keys) != list(range(len(keys))):
        raise CheckpointImportError(ckpt.prefix, f"{what}: inner layers {sorted(keys)} are not 0..q-1")
    return [ckpt.read(keys[i]) for i in range(len(keys))]


def _convert_layer(ckpt: TFCheckpoint, module: nn.Module, attrs: dict[str, dict[int, str]], where: str) -> dict:
    out: dict[str, torch.Tensor] = {}
    if isinstance(module, InstanceNorm):
        for attr, target in (("gamma", "weight"), ("beta", "bias")):
            if attr not in attrs:
                raise CheckpointImportError(ckpt.prefix, f"{where}: missing {attr}")
            out[target] = torch.from_numpy(ckpt.read(attrs[attr][0]).copy())
        return out
    if "kernel" not in attrs:
        raise CheckpointImportError(ckpt.prefix, f"{where}: missing kernel")
    kernels = _stack(ckpt, attrs["kernel"], where)
    if isinstance(module, nn.Linear):
        out["weight"] = torch.from_numpy(kernels[0].T.copy())
        out["bias"] = torch.from_numpy(ckpt.read(attrs["bias"][0]).copy())
        return out
    # Conv2D kernels are HWIO, Conv2DTranspose kernels HWOI; permute(3, 2, 0, 1) gives the
    # torch layouts OIHW and IOHW respectively (no spatial flip), then concatenate the q
    # inner kernels along the input axis (dim 1 for conv, dim 0 for transposed conv).
    torch_kernels = [torch.from_numpy(k.copy()).permute(3, 2, 0, 1) for k in kernels]
    if isinstance(module, OperationalConvTranspose2d):
        out["weight"] = torch.cat(torch_kernels, dim=0).contiguous()
    elif isinstance(module, OperationalConv2d):
        out["weight"] = torch.cat(torch_kernels, dim=1).contiguous()
    else:  # pragma: no cover - models only contain the layer types above
        raise TypeError(type(module))
    has_bias = getattr(module, "bias", None) is not None
    if has_bias:
        if "bias" not in attrs:
            raise CheckpointImportError(ckpt.prefix, f"{where}: missing bias")
        out["bias"] = torch.stack([torch.from_numpy(b.copy()) for b in _stack(ckpt, attrs["bias"], where)])
    elif "bias" in attrs:
        raise CheckpointImportError(ckpt.prefix, f"{where}: has a bias the architecture does not have")
    return out


def _import(path: str | Path, model: nn.Module, root: str, label: str) -> dict[str, torch.Tensor]:
    ckpt = TFCheckpoint(path)
    groups = _group(ckpt, root)
    if not groups:
        raise CheckpointImportError(
            ckpt.prefix, f"no {root} model in this checkpoint (objects found: {_describe_roots(ckpt)})"
        )
    layers = model.tf_weight_layers()  # type: ignore[operator]
    names = {id(m): n for n, m in model.named_modules()}
    if sorted(groups) != list(range(len(layers))):
        raise CheckpointImportError(
            ckpt.prefix,
            f"{root} has {len(groups)} weighted layers, a {label} has {len(layers)}: "
            f"wrong --arch (this looks like a model with q={_infer_q(groups)} and {len(groups)} weighted layers)",
        )
    state: dict[str, torch.Tensor] = {}
    for n, module in enumerate(layers):
        where = f"{root} layer_with_weights-{n}"
        for key, tensor in _convert_layer(ckpt, module, groups[n], where).items():
            state[f"{names[id(module)]}.{key}"] = tensor.float()
    expected = model.state_dict()
    for key, tensor in state.items():
        if expected[key].shape != tensor.shape:
            raise CheckpointImportError(
                ckpt.prefix,
                f"{key}: checkpoint shape {tuple(tensor.shape)} does not fit a {label} "
                f"({tuple(expected[key].shape)}); wrong --arch or --q "
                f"(checkpoint looks like q={_infer_q(groups)})",
            )
    missing = set(expected) - set(state)
    if missing:
        raise CheckpointImportError(ckpt.prefix, f"checkpoint lacks {sorted(missing)[0]} of a {label}")
    return state


def _label(arch: str, q: int | None) -> str:
    return f"{arch} (q={q})" if q else arch


def import_tf_checkpoint(path: str | Path, arch: str, q: int | None = None, root: str = "G_A2B") -> dict:
    """State dict for ``build_generator(arch, q)`` from the authors' checkpoint at ``path``.

    ``path`` may be the checkpoint folder (its ``checkpoint`` file names the newest
    prefix), a prefix such as ``.../ckpt-2000``, or its ``.index`` file. TensorFlow is not
    needed.
    """
    try:
        q = check_arch(arch, q)
    except ValueError as exc:
        raise CheckpointImportError(path, str(exc)) from None
    return _import(path, build_generator(arch, q), root, _label(arch, q) + " generator")


def import_tf_discriminator(path: str | Path, arch: str, q: int | None = None, root: str = "D_A") -> dict:
    """State dict for ``build_discriminator(arch, q)`` (``D_A`` or ``D_B`` of a train.py checkpoint)."""
    try:
        q = check_arch(arch, q)
    except ValueError as exc:
        raise CheckpointImportError(path, str(exc)) from None
    return _import(path, build_discriminator(arch, q), root, _label(arch, q) + " discriminator")

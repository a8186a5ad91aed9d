"""Resumable training checkpoints without pickle.

A checkpoint is a folder ``ckpt-<step>/`` with ``tensors.safetensors`` (model weights,
Adam moments, image-pool contents, torch RNG state) and ``state.json`` (step, epoch,
Adam step counts, config). It is written to a temporary folder and renamed, so an
interrupted save never leaves a half checkpoint; the newest complete one is resumed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.errors import TrainingError, os_reason

KEEP = 2


def optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam state as flat tensors + JSON-able scalars (param index order is stable)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": [{k: v for k, v in g.items() if k != "params"}
                                                for g in opt.state_dict()["param_groups"]]}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.dim() > 0:
                tensors[f"{prefix}/{idx}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}/{key}"] = float(value.item() if torch.is_tensor(value) else value)
    return tensors, scalars


def load_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   scalars: dict[str, Any]) -> None:
    state_dict = opt.state_dict()
    new_state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "/"):
            _, idx, key = name.split("/", 2)
            new_state.setdefault(int(idx), {})[key] = value
    for name, value in scalars.items():
        if name == "param_groups":
            continue
        idx, key = name.split("/", 1)
        new_state.setdefault(int(idx), {})[key] = torch.tensor(value)
    state_dict["state"] = new_state
    # A checkpoint from before a parameter group was added (e.g. the tone curve) restores the groups
    # it has; the new group's parameters start with fresh Adam moments.
    for group, saved in zip(state_dict["param_groups"], scalars["param_groups"], strict=False):
        group.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in saved.items()})
    opt.load_state_dict(state_dict)


def save_checkpoint(run_dir: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"ckpt-{step:08d}"
    tmp = ckpt_root / f".tmp-ckpt-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        for f in tmp.iterdir():  # make the files durable before the rename publishes them
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    except (OSError, SafetensorError) as exc:
        # A full disk is the usual cause: drop the half-written folder (it would only hold the
        # space) and say which complete checkpoint a restart resumes from.
        shutil.rmtree(tmp, ignore_errors=True)
        kept = latest_checkpoint(run_dir)
        resume = f"training resumes from {kept.name}" if kept else "no earlier checkpoint exists"
        raise TrainingError(final, f"cannot write the checkpoint ({os_reason(exc)}); {resume}") from None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(ckpt_root.glob("ckpt-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(p for p in (run_dir / "checkpoints").glob("ckpt-*") if (p / "state.json").is_file())
    return found[-1] if found else None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        return load_file(str(path / "tensors.safetensors")), json.loads((path / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(path, f"training checkpoint cannot be read ({exc})") from None


def load_latest_checked(run_dir: Path, config: Any, keys: tuple[str, ...]
                        ) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest checkpoint of ``run_dir`` (None if there is none), refused when it was trained with
    other values of ``keys`` than ``config`` has (a key the checkpoint lacks counts as the class default)."""
    path = latest_checkpoint(run_dir)
    if path is None:
        return None
    tensors, state = load_checkpoint(path)
    saved = state["config"]
    for key in keys:
        if saved.get(key, getattr(type(config), key, None)) != getattr(config, key):
            raise TrainingError(path, f"checkpoint was trained with {key}={saved.get(key)!r}, "
                                      f"not {getattr(config, key)!r}")
    return path, tensors, state

"""Where models run: CUDA when there is a GPU, else the CPU (overridable with R2C_DEVICE)."""

from __future__ import annotations

import os

import torch

from core.errors import R2CError


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` (or ``$R2C_DEVICE``): "cpu", "cuda", "cuda:1"; default: CUDA if available."""
    choice = prefer or os.environ.get("R2C_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError:
        raise R2CError(None, f"unknown device {choice!r} (use cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise R2CError(None, "CUDA was requested but no usable GPU is available")
    return device


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({torch.get_num_threads()} threads)"

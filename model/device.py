"""Choosing the torch device from a setting: auto, cpu, cuda or mps."""

from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda asked for, but CUDA is not available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device mps asked for, but MPS is not available")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)

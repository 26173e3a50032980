"""What one captured training step says about the run's health, and when to warn.

The numbers follow makemore part 3: a layer's activations (mean, std, share saturated)
and their gradients; per weight matrix, the gradient's size against the data's, and the
update's (log10): near -3 is healthy, far from it means the rate is off for that layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

TINY = 1e-12  # floor for divisors and log10 arguments, so every figure stays finite
MAX_WARNINGS = 3  # printed per capture: enough to see a trend without flooding the log


@dataclass
class LayerCapture:
    """What one captured step leaves of a layer: its statistics and histogram samples."""

    act_mean: float | None  # None when not finite (a diverged step)
    act_std: float | None
    saturation: float
    act_sample: Tensor  # CPU, float32, at most MAX_HIST_VALUES
    grad_mean: float | None = None  # None until the backward pass reaches the layer
    grad_std: float | None = None
    grad_sample: Tensor | None = None

    def entry(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "act_mean": self.act_mean,
            "act_std": self.act_std,
            "saturation": self.saturation,
            "grad_mean": self.grad_mean,
            "grad_std": self.grad_std,
        }


@dataclass
class Limits:
    saturation_threshold: float = 0.97  # |tanh| above this counts as saturated
    saturation_warn: float = 0.05  # warn when more than this share is saturated
    ratio_low: float = 1e-4  # update/data ratios outside [low, high] at the peak rate
    ratio_high: float = 1e-2


def param_entry(name: str, p: nn.Parameter, before: dict[str, Tensor] | None) -> dict[str, Any]:
    """A weight matrix's gradient/data ratio and, given its value `before` the step, the
    log10 of its update/data ratio. Call only for a parameter with a gradient."""
    assert p.grad is not None
    data_std = std(p.detach())
    update: float | None = None
    if before is not None and name in before:
        change = std(p.detach() - before[name].to(p.device))
        update = finite(math.log10(max(change / max(data_std, TINY), TINY)))
    return {
        "name": name,
        "shape": list(p.shape),
        "grad_data_ratio": finite(std(p.grad) / max(data_std, TINY)),
        "update_data_log10": update,
    }


def layer_warnings(layers: list[dict[str, Any]], limits: Limits) -> list[str]:
    warnings = []
    for layer in layers:
        if layer["saturation"] > limits.saturation_warn:
            warnings.append(
                f"layer {layer['name']}: {layer['saturation']:.1%} of activations "
                f"saturated (|t| > {limits.saturation_threshold:g})"
            )
        if any(layer[k] is None for k in ("act_mean", "act_std")):
            warnings.append(f"layer {layer['name']}: activations are not finite")
    return warnings


def param_warnings(params: list[dict[str, Any]], lr_scale: float, limits: Limits) -> list[str]:
    """A schedule that decays the rate shrinks the updates on purpose, so the bounds shrink
    with `lr_scale` (the rate's share of its peak); below a tenth of the peak (a schedule's
    tail) update ratios are not judged."""
    judge_updates = lr_scale >= 0.1
    shift = math.log10(max(lr_scale, TINY))
    low, high = math.log10(limits.ratio_low) + shift, math.log10(limits.ratio_high) + shift
    warnings = []
    for p in params:
        if p["grad_data_ratio"] is None:
            warnings.append(f"param {p['name']}: gradient is not finite")
        value = p["update_data_log10"]
        if judge_updates and value is not None and not low <= value <= high:
            warnings.append(
                f"param {p['name']}: update/data ratio 10^{value:.2f} is far from 1e-3 "
                f"(outside 10^[{low:.2f}, {high:.2f}] at {lr_scale:.2g} of the peak lr)"
            )
    return warnings


def report(warnings: list[str], step: int, write: Callable[[str], None]) -> None:
    """Print up to MAX_WARNINGS of a capture's warnings, and how many more there were."""
    for warning in warnings[:MAX_WARNINGS]:
        write(f"warning at step {step}: {warning}")
    if len(warnings) > MAX_WARNINGS:
        write(f"warning at step {step}: ... and {len(warnings) - MAX_WARNINGS} more")


# -- tensor helpers --------------------------------------------------------------------


def select(t: Tensor, mask: Tensor | None) -> Tensor:
    # Padding after a name has ended is not part of the batch's statistics (nor of
    # BatchNorm's): drop it so it does not dilute them.
    return t[mask] if mask is not None else t


def std(t: Tensor) -> float:
    # Population std: defined (zero) for one element, where the unbiased one is nan.
    return float(t.float().std(correction=0)) if t.numel() else 0.0


def mean_std(t: Tensor) -> tuple[float | None, float | None]:
    if not t.numel():
        return 0.0, 0.0
    s, mean = torch.std_mean(t.float(), correction=0)
    return finite(float(mean)), finite(float(s))


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def finite(value: float) -> float | None:
    """The value, or None (JSON null) when it is nan or infinite, as after a divergence."""
    return value if math.isfinite(value) else None

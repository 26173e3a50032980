"""Training-health diagnostics of makemore part 3: activations, gradients, update ratios.

Wrap one training step's forward and backward in `Diagnostics.capture()`, then call
`record()` after `optimizer.step()`. While capturing, hooks on every level of the model
(every tanh and recurrent layer of a model without `levels`) measure the level's
activation (its tanh, before dropout) over the real positions of the batch, and hook
its gradient. `record()` turns that, with the weights'
gradients and the update just applied, into one line of `diagnostics.jsonl` and a list
of warnings; `log_losses()` keeps the loss curve in `losses.jsonl`; `plot()` draws it all.

Hooks only read: a captured step computes exactly what an uncaptured one does, and the
subsampling for histograms uses a private generator, so a run's random streams (and so
its weights) are the same with diagnostics on or off.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from model import IGNORE_INDEX
from training import health, plots
from training.health import LayerCapture, Limits, finite, fmt

DIAGNOSTICS_FILE = "diagnostics.jsonl"
LOSSES_FILE = "losses.jsonl"
MAX_HIST_VALUES = 100_000  # values kept per layer for its histograms


class Diagnostics:
    """Measures the health of training at the steps run under `capture()`."""

    def __init__(
        self,
        model: nn.Module,
        out_dir: str | Path,
        *,
        saturation_threshold: float = 0.97,
        saturation_warn: float = 0.05,
        ratio_low: float = 1e-4,
        ratio_high: float = 1e-2,
    ) -> None:
        self.model = model
        self.out_dir = Path(out_dir)
        self.limits = Limits(saturation_threshold, saturation_warn, ratio_low, ratio_high)
        self._active = False
        self._current: dict[str, LayerCapture] = {}  # filled by hooks during capture()
        self._mask: Tensor | None = None  # (B, T) real positions of the batch in flight
        self.latest: dict[str, LayerCapture] = {}  # of the last record(), for plot()
        self._sampler = torch.Generator().manual_seed(0)  # never the training RNG

    # -- capturing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """Measure the layers during the forward and backward passes run inside."""
        self._current, self._mask = {}, None
        handles = [self.model.register_forward_pre_hook(self._mask_hook, with_kwargs=True)]
        for point in watch_points(self.model):
            if point.takes_input:
                handles.append(point.module.register_forward_pre_hook(self._input_hook(point)))
            else:
                handles.append(point.module.register_forward_hook(self._output_hook(point)))
        self._active = True
        try:
            yield
        finally:
            # Gradient hooks stay on the graph's tensors; the flag disarms them.
            self._active = False
            for handle in handles:
                handle.remove()

    def _mask_hook(self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # The real positions of the batch are the targets that are not padding.
        targets = kwargs.get("targets", args[1] if len(args) > 1 else None)
        self._mask = targets != IGNORE_INDEX if isinstance(targets, Tensor) else None

    def _input_hook(self, point: WatchPoint) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            self._watch(point.name, args[0] if args else None)

        return hook

    def _output_hook(self, point: WatchPoint) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            self._watch(point.name, out[0] if isinstance(out, tuple) else out)

        return hook

    def _watch(self, name: str, x: Any) -> None:
        """Measure activation x (B, T, H) now and its gradient when backward reaches it."""
        if not self._active or not isinstance(x, Tensor):
            return
        mask = self._mask
        if mask is None or mask.shape != x.shape[:-1]:
            mask = None
        self._current[name] = self._measure_activation(x, mask)
        if x.requires_grad:
            x.register_hook(self._grad_hook(name, mask))  # type: ignore[no-untyped-call]

    def _grad_hook(self, name: str, mask: Tensor | None) -> Any:
        def hook(grad: Tensor) -> None:
            capture = self._current.get(name)
            if not self._active or capture is None:
                return
            g = health.select(grad.detach(), mask)
            capture.grad_mean, capture.grad_std = health.mean_std(g)
            capture.grad_sample = self._sample(g)

        return hook

    def _measure_activation(self, x: Tensor, mask: Tensor | None) -> LayerCapture:
        x = health.select(x.detach(), mask)
        mean, std = health.mean_std(x)
        threshold = self.limits.saturation_threshold
        saturated = float((x.abs() > threshold).float().mean()) if x.numel() else 0.0
        return LayerCapture(mean, std, saturated, self._sample(x))

    def _sample(self, t: Tensor) -> Tensor:
        flat = t.reshape(-1).float().cpu()
        if flat.numel() <= MAX_HIST_VALUES:
            return flat.clone()
        return flat[torch.randint(flat.numel(), (MAX_HIST_VALUES,), generator=self._sampler)]

    # -- recording ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Tensor]:
        """Copies of the weights `record()` reports on; take it just before optimizer.step()."""
        return {name: p.detach().clone() for name, p in self._weights()}

    def _weights(self) -> list[tuple[str, nn.Parameter]]:
        # Matrices only, like the lecture: biases and BatchNorm gains are left out.
        return [
            (n, p) for n, p in self.model.named_parameters() if p.requires_grad and p.dim() >= 2
        ]

    def record(
        self,
        step: int,
        lr: float,
        params_before: dict[str, Tensor] | None = None,
        lr_scale: float = 1.0,
    ) -> list[str]:
        """Write the statistics of the step just captured; return warnings about them.

        Call after optimizer.step(), before the next zero_grad(). Parameters without a
        gradient are left out; "update_data_log10" is null without `params_before`.
        `lr_scale` is the learning rate's share of its peak: a schedule that decays the
        rate shrinks the updates on purpose, so the update-ratio bounds shrink with it, and
        below a tenth of the peak (a schedule's tail) update ratios are not judged."""
        layers = [c.entry(name) for name, c in self._current.items()]
        params = [
            health.param_entry(n, p, params_before)
            for n, p in self._weights()
            if p.grad is not None
        ]
        self.latest, self._current = self._current, {}
        self._append(DIAGNOSTICS_FILE, {"step": step, "lr": lr, "layers": layers, "params": params})
        return health.layer_warnings(layers, self.limits) + health.param_warnings(
            params, lr_scale, self.limits
        )

    def log_losses(
        self, step: int, train_loss: float | None = None, val_loss: float | None = None
    ) -> None:
        """Append the step's losses to losses.jsonl (one line per loss given)."""
        if train_loss is not None:
            self._append(LOSSES_FILE, {"step": step, "train_loss": finite(train_loss)})
        if val_loss is not None:
            self._append(LOSSES_FILE, {"step": step, "val_loss": finite(val_loss)})

    def _append(self, filename: str, row: dict[str, Any]) -> None:
        # Opened per line so a crash loses at most the line being written.
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with (self.out_dir / filename).open("a") as f:
            f.write(json.dumps(row, allow_nan=False) + "\n")

    # -- figures -----------------------------------------------------------------------

    def plot(self) -> list[Path]:
        """Draw loss.png, activations.png, gradients.png and update_ratios.png into out_dir."""
        out = self.out_dir
        acts = {
            name: plots.Histogram(
                c.act_sample.numpy(),
                f"{name}: mean {fmt(c.act_mean, '+.2f')}, std {fmt(c.act_std, '.2f')}, "
                f"saturated {c.saturation:.1%}",
            )
            for name, c in self.latest.items()
        }
        grads = {
            name: plots.Histogram(
                c.grad_sample.numpy(),
                f"{name}: mean {fmt(c.grad_mean, '+.2e')}, std {fmt(c.grad_std, '.2e')}",
            )
            for name, c in self.latest.items()
            if c.grad_sample is not None
        }
        return [
            plots.plot_losses(out / LOSSES_FILE, out / "loss.png"),
            plots.plot_histograms(acts, out / "activations.png", title="activations (tanh)"),
            plots.plot_histograms(grads, out / "gradients.png", title="activation gradients"),
            plots.plot_update_ratios(out / DIAGNOSTICS_FILE, out / "update_ratios.png"),
        ]


@dataclass
class WatchPoint:
    """Where a layer's activation is read: a module's output, or its input."""

    name: str
    module: nn.Module
    takes_input: bool = False


RECURRENT = (nn.Tanh, nn.LSTM, nn.GRU, nn.RNN)


def watch_points(model: nn.Module) -> list[WatchPoint]:
    """The activation of every level of a WaveNet; else of every tanh and recurrent layer."""
    levels = getattr(model, "levels", None)
    if not isinstance(levels, nn.ModuleList):
        return [WatchPoint(n, m) for n, m in model.named_modules() if isinstance(m, RECURRENT)]
    points = []
    for i, level in enumerate(levels):
        dropout = getattr(level, "dropout", None)
        if isinstance(dropout, nn.Dropout):
            # Read before dropout, which zeroes values and scales the rest by 1 / (1 - p):
            # after it, |x| > 0.97 would count values that are not saturated.
            points.append(WatchPoint(f"levels.{i}", dropout, takes_input=True))
        else:
            points.append(WatchPoint(f"levels.{i}", level))
    return points

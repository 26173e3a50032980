"""Figures of training health (makemore part 3): loss curve, histograms, update ratios, LR test.

Every function draws on its own `matplotlib.figure.Figure` rather than through pyplot, so
nothing touches pyplot's global figure registry or backend: figures are freed when they
go out of scope (no `plt.close` needed) and importing this module changes no global
state. Each function writes one PNG and returns its path; with no data it still writes
a valid figure that says so, so callers never have to special-case a fresh run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

HIST_BINS = 80
MAX_LOSS_POINTS = 200  # train losses are averaged in buckets down to about this many points


@dataclass
class Histogram:
    """Values of one layer to draw as a histogram, and the legend's summary of them."""

    values: np.ndarray[Any, np.dtype[np.float32]]
    label: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file; [] when it does not exist yet.

    A line cut short by a crash mid-write is skipped rather than failing the plot."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def series(rows: Iterable[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key`, sorted by step, the last line winning for a repeated step.

    A resumed run logs again the steps after its last save, and those replace the old."""
    by_step: dict[int, float] = {}
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value) and "step" in row:
            by_step[int(row["step"])] = float(value)
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def bucket_means(
    steps: list[int], values: list[float], max_points: int = MAX_LOSS_POINTS
) -> tuple[list[float], list[float]]:
    """Means over consecutive buckets of steps (the lecture's `view(-1, 1000).mean(1)`)."""
    size = max(1, math.ceil(len(values) / max_points))
    xs, ys = [], []
    for start in range(0, len(values), size):
        xs.append(float(np.mean(steps[start : start + size])))
        ys.append(float(np.mean(values[start : start + size])))
    return xs, ys


def _new_axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(9, 4.5), layout="tight")
    ax = fig.add_subplot()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes)


def _save(fig: Figure, out_png: Path) -> Path:
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    return out_png


def plot_losses(losses_jsonl: Path, out_png: Path) -> Path:
    """Train loss (bucket means) and validation loss against step, log-scale y."""
    rows = read_jsonl(losses_jsonl)
    fig, ax = _new_axes("loss", "step", "loss (nats per character)")
    train_steps, train = series(rows, "train_loss")
    val_steps, val = series(rows, "val_loss")
    # Log scale needs positive values; a cross-entropy is never negative, zero only if
    # perfect, so dropping non-positive values loses nothing worth drawing.
    train_steps, train = _positive(train_steps, train)
    val_steps, val = _positive(val_steps, val)
    if not train and not val:
        _no_data(ax, "losses")
        return _save(fig, out_png)
    if train:
        xs, ys = bucket_means(train_steps, train)
        bucket = math.ceil(len(train) / MAX_LOSS_POINTS)
        ax.plot(xs, ys, label=f"train (mean of {bucket} steps)" if bucket > 1 else "train")
    if val:
        ax.plot(val_steps, val, "o-", markersize=3, label="val")
    ax.set_yscale("log")
    # Losses span less than a decade: label the ticks as plain numbers, not 2x10^0.
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.legend()
    return _save(fig, out_png)


def _positive(steps: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    kept = [(s, v) for s, v in zip(steps, values, strict=True) if v > 0]
    return [s for s, _ in kept], [v for _, v in kept]


def plot_histograms(hists: Mapping[str, Histogram], out_png: Path, *, title: str) -> Path:
    """One outline histogram (density) per layer, as in the lecture's activation plots."""
    fig, ax = _new_axes(title, "value", "density")
    drawn = False
    for hist in hists.values():
        values = hist.values[np.isfinite(hist.values)]
        if values.size == 0:
            continue
        density, edges = np.histogram(values, bins=HIST_BINS, density=True)
        ax.plot((edges[:-1] + edges[1:]) / 2, density, label=hist.label)
        drawn = True
    if drawn:
        ax.legend(fontsize="small")
    else:
        _no_data(ax, "captured values")
    return _save(fig, out_png)


def plot_update_ratios(diagnostics_jsonl: Path, out_png: Path) -> Path:
    """log10(update std / data std) per weight over steps; the lecture aims for about -3."""
    rows = read_jsonl(diagnostics_jsonl)
    per_param: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        for param in row.get("params", []):
            entry = {"step": row.get("step"), "value": param.get("update_data_log10")}
            per_param.setdefault(str(param.get("name")), []).append(entry)
    fig, ax = _new_axes("update-to-data ratio", "step", "log10(update std / data std)")
    drawn = False
    for name, entries in per_param.items():
        steps, values = series(entries, "value")
        if values:
            ax.plot(steps, values, ".-" if len(values) < 50 else "-", label=name)
            drawn = True
    ax.axhline(-3, color="black", linestyle="--", linewidth=1)
    if drawn:
        ax.legend(fontsize="small")
    else:
        _no_data(ax, "update ratios")
    return _save(fig, out_png)


def plot_lr_range(
    lrs: list[float], losses: list[float], suggested_lr: float, out_png: Path
) -> Path:
    """Smoothed loss against learning rate (log x), with the suggested rate marked."""
    fig, ax = _new_axes("learning-rate range test", "learning rate", "smoothed training loss")
    if not lrs:
        _no_data(ax, "losses")
        return _save(fig, out_png)
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.axvline(suggested_lr, color="red", linestyle="--", label=f"suggested {suggested_lr:.2e}")
    ax.legend()
    return _save(fig, out_png)


def plot_val_curves(
    histories: Mapping[str, list[dict[str, Any]]], out_png: Path, *, title: str
) -> Path:
    """Validation loss against training time, one line per run (a sweep's runs)."""
    fig, ax = _new_axes(
        f"{title}: validation loss during training", "training time (s)", "validation loss"
    )
    drawn = 0
    for name, history in histories.items():
        if history:
            ax.plot(
                [h["elapsed_s"] for h in history],
                [h["val_loss"] for h in history],
                label=name,
                marker=".",
            )
            drawn += 1
    if drawn:
        # Beside the axes, in columns of at most 20: a sweep of dozens of runs would
        # otherwise hide its own curves under the legend.
        columns = math.ceil(drawn / 20)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=columns)
        fig.set_size_inches(9 + 2.5 * columns, 4.5)
    else:
        _no_data(ax, "finished runs")
    return _save(fig, out_png)

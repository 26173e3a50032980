"""The learning-rate range test: sweep the rate up geometrically and watch the loss.

Starting from a fresh model, each optimizer step uses a rate a constant factor above the
last, from `lr_min` to `lr_max` (makemore part 2's `lre = torch.linspace(-3, 0, 1000)`,
as a sweep inside one run). The loss falls while the rate is useful and blows up once it
is too large; the sweep stops there (smoothed loss above 4x its best). The suggested rate
is where the smoothed loss falls fastest per decade of rate: the steepest point of the
descent, before the minimum (where the rate is already nearly too high). When the
descent is too short to have a slope, it falls back to the rate of the lowest loss / 10.

`python -m training.lr_range --corpus names.txt --out runs/lr` prints the suggestion.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.device import pick_device
from model.registry import LanguageModel, build_model
from training import plots
from training.cli import add_model_flags, model_from_args
from training.config import TrainConfig
from training.corpus import CorpusError
from training.data import EncodedNames, prepare_data
from training.trainer import make_optimizer

SMOOTHING = 0.9  # EMA of the loss; 0.98 (fastai's) lags too far behind a 200-step sweep
DIVERGED = 4.0  # stop once the smoothed loss exceeds this many times the best
MIN_DESCENT = 5  # points before the minimum needed to trust a slope


@dataclass
class LRRangeResult:
    lrs: list[float]  # the rate of each step run
    losses: list[float]  # the smoothed (bias-corrected EMA) training loss after each step
    suggested_lr: float  # within [lr_min, lr_max]
    plot: Path | None  # lr_range.png, None when no plot was asked for
    min_loss: float = math.nan  # the lowest smoothed loss, and the rate where it was
    min_loss_lr: float = math.nan


def lr_range_test(
    cfg: TrainConfig,
    *,
    lr_min: float = 1e-5,
    lr_max: float = 1.0,
    steps: int = 200,
    write_plot: bool = True,
) -> LRRangeResult:
    """Sweep the learning rate from lr_min to lr_max over `steps` steps of `cfg`'s training.

    Data, model, optimizer, batches and seeds are the trainer's; only the rate differs.
    Writes `cfg.out/lr_range.png` unless `write_plot` is false."""
    if not 0 < lr_min < lr_max:
        raise ValueError(f"need 0 < lr_min < lr_max, got {lr_min} and {lr_max}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    _, vocab, data = prepare_data(cfg, device)
    cfg = cfg.with_vocab_size(vocab.size)
    torch.manual_seed(cfg.seed)  # the trainer's initialisation
    model = build_model(cfg.model).to(device)
    optimizer = make_optimizer(model, cfg)
    schedule = [lr_min * (lr_max / lr_min) ** (i / (steps - 1)) for i in range(steps)]
    lrs, losses = sweep(model, optimizer, data.train, cfg, schedule)

    suggested = suggest_lr(lrs, losses, lr_min, lr_max)
    lowest = int(np.argmin(losses)) if losses else 0
    plot = None
    if write_plot:
        plot = plots.plot_lr_range(lrs, losses, suggested, Path(cfg.out) / "lr_range.png")
    return LRRangeResult(
        lrs,
        losses,
        suggested,
        plot,
        min_loss=losses[lowest] if losses else math.nan,
        min_loss_lr=lrs[lowest] if lrs else math.nan,
    )


def sweep(
    model: LanguageModel,
    optimizer: torch.optim.Optimizer,
    train: EncodedNames,
    cfg: TrainConfig,
    schedule: list[float],
) -> tuple[list[float], list[float]]:
    """Train one step at each rate of `schedule` until the loss blows up.

    Returns the rates run and the smoothed loss after each."""
    model.train()
    batch_rng = torch.Generator().manual_seed(cfg.seed)  # the trainer's batches
    lrs: list[float] = []
    losses: list[float] = []
    ema, best = 0.0, math.inf
    for i, lr in enumerate(schedule):
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = torch.randint(len(train), (cfg.batch_size,), generator=batch_rng)
        x, y = train.batch(rows.to(train.x.device))
        _, loss = model(x, y)
        assert loss is not None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()

        value = loss.item()
        if not math.isfinite(value):
            break  # diverged outright
        ema = SMOOTHING * ema + (1 - SMOOTHING) * value
        smoothed = ema / (1 - SMOOTHING ** (i + 1))  # bias correction: no pull towards 0
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > DIVERGED * best:
            break
    return lrs, losses


def suggest_lr(lrs: list[float], losses: list[float], lr_min: float, lr_max: float) -> float:
    """The rate of steepest descent of the loss before its minimum; else min-loss rate / 10.

    The slope is d loss / d log10(lr); past the minimum the loss rises, and a steep point
    there would be a rate that already diverges."""
    if not lrs:
        return lr_min
    lowest = int(np.argmin(losses))
    if lowest < MIN_DESCENT:
        return min(max(lrs[lowest] / 10, lr_min), lr_max)
    slopes = np.gradient(np.asarray(losses[: lowest + 1]), np.log10(lrs[: lowest + 1]))
    return min(max(lrs[int(np.argmin(slopes))], lr_min), lr_max)


# -- command line ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig(corpus="", out="")
    p = argparse.ArgumentParser(
        prog="python -m training.lr_range",
        description="Learning-rate range test: train a fresh model for STEPS steps with the "
        "rate rising geometrically from LR_MIN to LR_MAX, write OUT/lr_range.png (smoothed "
        "loss against rate) and print the suggested rate (steepest descent of the loss).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = p.add_argument
    add("--corpus", required=True, help="text file, one name per line")
    add("--out", required=True, help="directory for lr_range.png (created)")
    add("--lr-min", type=float, default=1e-5, help="rate of the first step")
    add("--lr-max", type=float, default=1.0, help="rate of the last step")
    add("--steps", type=int, default=200, help="optimizer steps of the sweep")
    add_model_flags(p)
    add("--optimizer", choices=["adamw", "sgd"], default=d.optimizer, help="optimizer")
    add("--momentum", type=float, default=d.momentum, help="SGD momentum")
    add("--batch-size", type=int, default=d.batch_size, help="names per step")
    add(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help="decoupled weight decay (AdamW) / L2 (SGD) on weight matrices",
    )
    add("--grad-clip", type=float, default=d.grad_clip, help="clip the gradient norm; 0 disables")
    add(
        "--keep-duplicates",
        action=argparse.BooleanOptionalAction,
        default=d.keep_duplicates,
        help="keep repeated names (the lecture does, on names.txt)",
    )
    add("--seed", type=int, default=d.seed, help="seed for initialisation and batches")
    add("--device", choices=["auto", "cpu", "cuda", "mps"], default=d.device, help="device")
    add("--threads", type=int, default=d.threads, help="torch CPU threads; 0 keeps the default")
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    sweep = {k: args.pop(k) for k in ("lr_min", "lr_max", "steps")}
    try:
        model = model_from_args(args)
        result = lr_range_test(TrainConfig(model=model, **args, progress=False), **sweep)
    except (CorpusError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"plot: {result.plot}")
    print(f"lr_range: suggested_lr={result.suggested_lr:.6g} min_loss={result.min_loss:.6g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

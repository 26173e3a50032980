"""Sampling speed: the cached batched sampler against two references, in one run.

- cached: namegen's sampler (model/sampling.py): per-level ring buffers, BatchNorm
  folded, one small step per level per character, the whole batch at once.
- lecture_loop: the lecture's way, one name at a time, the whole context window re-run
  through the tree (FlattenConsecutive + Linear per level) for every character.
- full_window: batched like ours, but every step re-runs the whole window (the last
  receptive-field characters) through the tree for the batch.

All three sample from the same checkpoint at temperature 1. Figures are names/s; n is
the number of names per call. The lecture loop is timed on min(n, 300) names and scaled,
since it costs the same per name whatever n is.

    python benchmarks/sampling.py [--checkpoint DIR] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Replace this folder on the path with the repo root: benchmarks/http.py would otherwise
# shadow the standard library's http module.
REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import time

import torch
import torch.nn.functional as F

from model import WaveNet
from model.checkpoint import load_checkpoint
from model.incremental import IncrementalWaveNet
from model.request import GenerateRequest
from model.sampling import sample

MAX_LENGTH = 32


def is_lecture_form(model: WaveNet) -> bool:
    c = model.config
    return not (c.gated or c.residual or c.skip or c.head_hidden) and c.batchnorm


def tree_logits(model: WaveNet, windows: torch.Tensor) -> torch.Tensor:
    """The lecture's forward of (B, block) windows: FlattenConsecutive + Linear per level,
    computing only the nodes the last position needs (fairer than the conv on a window).
    Other configurations run the model's own forward on the window."""
    if not is_lecture_form(model):
        return model(windows)[0][:, -1]
    x = model.wte.weight[windows]  # (B, block, C)
    for level in model.levels:
        B, T, C = x.shape
        k = level.conv.kernel
        x = x.reshape(B, T // k, k * C) @ level.conv.proj.weight.t()
        scale, shift = level.bn.scale_shift(level.bn.running_mean, level.bn.running_var)
        x = torch.tanh(x * scale + shift)
    return model.lm_head(x[:, -1])  # (B, V)


@torch.inference_mode()
def lecture_loop(model: WaveNet, n: int, g: torch.Generator) -> list[list[int]]:
    block = model.config.receptive_field
    out = []
    for _ in range(n):
        context, name = [0] * block, []
        while True:
            logits = tree_logits(model, torch.tensor([context]))
            probs = F.softmax(logits[0], dim=-1)
            ix = int(torch.multinomial(probs, num_samples=1, generator=g))
            if ix == 0 or len(name) == MAX_LENGTH:
                break
            context = context[1:] + [ix]
            name.append(ix)
        out.append(name)
    return out


@torch.inference_mode()
def full_window(model: WaveNet, n: int, g: torch.Generator) -> list[list[int]]:
    block = model.config.receptive_field
    seq = torch.zeros(n, block, dtype=torch.long)  # the window, left-padded with '.'
    names = torch.zeros(n, MAX_LENGTH, dtype=torch.long)
    running = torch.ones(n, dtype=torch.bool)
    for t in range(MAX_LENGTH):
        logits = tree_logits(model, seq)  # re-runs the whole window
        probs = F.softmax(logits, dim=-1)
        ix = torch.multinomial(probs, 1, generator=g).squeeze(1)
        ix = torch.where(running, ix, 0)
        names[:, t] = ix
        running &= ix != 0
        if not running.any():
            break
        seq = torch.cat([seq[:, 1:], ix[:, None]], dim=1)
    return [[i for i in row if i] for row in names.tolist()]


def cached(net: IncrementalWaveNet, n: int, g: torch.Generator) -> list[list[int]]:
    return sample(net, n, GenerateRequest(max_length=MAX_LENGTH), g)[0]


def names_per_second(fn, n: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for r in range(repeats):
        g = torch.Generator().manual_seed(r)
        started = time.perf_counter()
        fn(n, g)
        best = min(best, time.perf_counter() - started)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    model, net = ckpt.model, IncrementalWaveNet(ckpt.model)
    repeats = 2 if args.quick else 5
    print(
        f"checkpoint {args.checkpoint} ({model.num_params()} params, receptive field "
        f"{model.config.receptive_field}), torch threads {torch.get_num_threads()}"
    )

    rows = {}
    for n in (1, 100, 10_000):
        c = names_per_second(lambda k, g: cached(net, k, g), n, repeats)
        loop_n = min(n, 300)
        lo = names_per_second(
            lambda k, g: lecture_loop(model, k, g), loop_n, 1 if n > 1 else repeats
        )
        w = names_per_second(lambda k, g: full_window(model, k, g), n, repeats)
        rows[n] = (c, lo, w)
        print(
            f"n={n:>6}: cached {c:>10.0f} names/s | lecture_loop {lo:>8.0f} names/s | "
            f"full_window {w:>9.0f} names/s | vs_loop {c / lo:>7.1f}x | vs_window {c / w:.2f}x",
            flush=True,
        )
    c, lo, w = rows[10_000]
    print(
        f"sampling n=10000: cached={c:.1f} names/s lecture_loop={lo:.1f} names/s "
        f"full_window={w:.1f} names/s vs_loop={c / lo:.1f}x vs_window={c / w:.2f}x"
    )


if __name__ == "__main__":
    main()

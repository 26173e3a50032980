"""Training-step speed of the best WaveNet configuration, against torch's stock parts.

- namegen: the model as it trains (model/wavenet.py): dropout masks drawn with torch.rand,
  BatchNorm statistics as weighted (1, N) @ (N, C) products.
- stock: the same model with nn.Dropout (bernoulli_ masks) and BatchNorm statistics from
  var_mean over the real positions (x[mask]), as before the speed-up.

Both train the same configuration (the `-distill2` rows of experiments/beyond.toml:
963,291 parameters) on the same packed batches of 128 names from names.txt, taking turns
in rounds in one process, so load on the machine hits both alike. Figures are ms per
step (forward, backward, AdamW step), median over rounds.

    python benchmarks/train_step.py [--rounds N] [--steps N] [--threads N]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import statistics
import time

import torch
from torch import Tensor, nn

from model import Vocab, WaveNet, WaveNetConfig
from model.layers import MaskedBatchNorm
from model.wavenet import Level
from training.corpus import load_corpus
from training.data import PACKED_ROW, EncodedNames, split_names

CORPUS = REPO.parent / "shared" / "data" / "names.txt"
CONFIG = WaveNetConfig(
    n_embd=64,
    n_hidden=256,
    kernel_sizes=(3, 2, 2, 2),
    gated=True,
    residual=True,
    skip=True,
    head_hidden=256,
    dropout=0.35,
)


class StockBatchNorm(MaskedBatchNorm):
    """The statistics as first written: var_mean over the rows of x[mask]."""

    def forward(self, x: Tensor, pad: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        if not self.training:
            return super().forward(x, pad, mask)
        rows = x[mask] if mask is not None else x.reshape(-1, x.shape[-1])
        var, mean = torch.var_mean(rows, dim=0, correction=0)
        with torch.no_grad():
            n = rows.shape[0]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (n / max(n - 1, 1)), self.momentum)
        scale, shift = self.scale_shift(mean, var)
        return x * scale + shift, pad * scale + shift


def stock(model: WaveNet) -> WaveNet:
    for level in model.levels:
        assert isinstance(level, Level) and level.bn is not None
        stock_bn = StockBatchNorm(level.bn.weight.numel(), level.bn.eps, level.bn.momentum)
        stock_bn.load_state_dict(level.bn.state_dict())
        level.bn = stock_bn
        level.dropout = nn.Dropout(CONFIG.dropout)  # type: ignore[assignment]
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="steps per model per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    names, _, _ = split_names(load_corpus(args.corpus, keep_duplicates=True).names)
    data = EncodedNames.build(names, Vocab.from_names(names))
    rows = torch.Generator().manual_seed(0)
    batches = [
        data.packed_batch(torch.randint(len(data), (128,), generator=rows), PACKED_ROW)
        for _ in range(args.steps)
    ]
    models = {}
    for name, make in (("namegen", lambda m: m), ("stock", stock)):
        torch.manual_seed(0)
        model = make(WaveNet(CONFIG)).train()
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=3e-3))

    def run(name: str) -> float:
        model, optimizer = models[name]
        started = time.perf_counter()
        for x, y, offsets in batches:
            _, loss = model(x, y, offsets=offsets)
            assert loss is not None
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        return 1000 * (time.perf_counter() - started) / len(batches)

    for name in models:  # warm up
        run(name)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name in models:
            times[name].append(run(name))
    ms = {name: statistics.median(t) for name, t in times.items()}
    for name in models:
        print(f"{name:8} {ms[name]:7.1f} ms/step")
    print(
        f"train_step: namegen_ms={ms['namegen']:.1f} stock_ms={ms['stock']:.1f} "
        f"speedup={ms['stock'] / ms['namegen']:.2f}x threads={args.threads}"
    )


if __name__ == "__main__":
    main()

"""Experiment (issue 18): read sex and era off a name with a head on the WaveNet's features
at the end of the name, labels unknown, instead of Bayes' rule over the conditional model.

The shipped checkpoint's network shape without label inputs; a linear head on the features
the logits are read from, at each name's end position, gives P(F) and P(decade). Targets
are each training name's births by sex and by decade (soft), the truth of
benchmarks/infer.py (majority sex by births, births-weighted mean year). Same split
(distinct names, seed 42, 80/10/10). Modes: `disc` trains the head's loss alone,
`joint` the language model's loss plus the head's.

    python experiments/label_head.py disc 240
    python experiments/label_head.py joint 240

Last line: the test names' sex accuracy, sex log loss, year MAE and the language model's
loss per character (labels unknown).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import argparse
import math
import time
from collections import defaultdict
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model import WaveNet, WaveNetConfig
from model.checkpoint import read_meta
from model.scoring import encode_names
from model.vocab import Vocab
from training.corpus import load_corpus
from training.data import split_names

Data = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]  # x, y, lengths, P(F), P(decade)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["disc", "joint"])
    parser.add_argument("seconds", type=float)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    corpus = load_corpus(REPO / "data" / "babynames.csv.gz")
    shipped = read_meta(REPO / "checkpoints" / "default")
    vocab = Vocab(shipped["vocab"])
    assert corpus.labels is not None
    decades = sorted({int(decade) for _, (_, decade), _ in corpus.labels.rows})
    births: dict[str, list[float]] = defaultdict(lambda: [0.0] * (2 + len(decades)))
    for name, (sex, decade), count in corpus.labels.rows:
        b = births[name]
        b[0 if sex == "F" else 1] += count
        b[2 + decades.index(int(decade))] += count

    def encode(names: list[str]) -> Data:
        x, y, n = encode_names(vocab, names)
        t = torch.tensor([births[name] for name in names])
        return x, y, n, t[:, 0] / t[:, :2].sum(1), t[:, 2:] / t[:, 2:].sum(1, keepdim=True)

    train, val, test = (encode(part) for part in split_names(corpus.names, 42))
    config = replace(WaveNetConfig.from_dict(shipped["model_config"]), label_sizes=())
    model = WaveNet(config)
    features: dict[str, Tensor] = {}
    model.lm_head.register_forward_hook(lambda m, i, o: features.__setitem__("h", i[0]))
    head = nn.Linear(config.head_hidden, 1 + len(decades))
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.1)
    years = torch.tensor(decades, dtype=torch.float32) + 5

    def run(data: Data, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The language model's loss, the head's loss, the head's outputs."""
        x, y, n, female, decade = data
        t = int(n[rows].max()) + 1
        _, lm_loss = model(x[rows, :t], y[rows, :t])
        assert lm_loss is not None
        out = head(features["h"][torch.arange(len(rows)), n[rows]])  # (B, 1 + decades)
        sex_loss = F.binary_cross_entropy_with_logits(out[:, 0], female[rows])
        era_loss = -(decade[rows] * F.log_softmax(out[:, 1:], -1)).sum(-1).mean()
        return lm_loss, sex_loss + era_loss, out

    @torch.no_grad()
    def evaluate(data: Data) -> list[float]:
        model.eval()
        outs, total = [], 0.0
        for start in range(0, len(data[0]), 4096):
            rows = torch.arange(start, min(start + 4096, len(data[0])))
            lm_loss, _, out = run(data, rows)
            outs.append(out)
            total += float(lm_loss) * int((data[1][rows] >= 0).sum())
        model.train()
        out = torch.cat(outs)
        _, y, _, female, decade = data
        p = torch.sigmoid(out[:, 0]).clamp(1e-7, 1 - 1e-7)
        truth = (female > 0.5).float()
        accuracy = float(((p > 0.5).float() == truth).float().mean())
        log_loss = float(-(truth * p.log() + (1 - truth) * (1 - p).log()).mean())
        expected = (F.softmax(out[:, 1:], -1) * years).sum(-1)
        mae = float((expected - (decade * years).sum(-1)).abs().mean())
        return [accuracy, log_loss, mae, total / int((y >= 0).sum())]

    started, step = time.time(), 0
    while (elapsed := time.time() - started) < args.seconds:
        lr = 3e-3 * min(1.0, step / 200) * 0.5 * (1 + math.cos(math.pi * elapsed / args.seconds))
        for group in optimizer.param_groups:
            group["lr"] = lr
        lm_loss, head_loss, _ = run(train, torch.randint(len(train[0]), (256,)))
        loss = head_loss if args.mode == "disc" else lm_loss + head_loss
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        step += 1
    print(f"steps {step}; val acc/log loss/MAE/lm loss {[round(v, 4) for v in evaluate(val)]}")
    print(f"test acc/log loss/MAE/lm loss {[round(v, 4) for v in evaluate(test)]}")


if __name__ == "__main__":
    main()

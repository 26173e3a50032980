"""`python -m training.breakdown CKPT [CKPT ...]`: where a model's loss comes from.

Splits each checkpoint's mean loss per character, on the split it was trained with (the
corpus and split recorded in its metadata), into the end-of-name predictions (target
'.') and every other character. The experiment tables say which model is better; this
says on what. Comparing the WaveNet rows with the LSTM one showed that the whole gap
between them is in deciding where a name ends.

`end_calibration` is the predicted number of ends (the sum of P(end) over every
prediction) over the true number: 1 for a calibrated model. `--dropout-samples K` also
scores the average of K predictions with dropout on (BatchNorm on its running statistics,
as served): what an ensemble of dropout masks would score, and so what dropout
distillation (training/distill.py) can hope to recover.

`--seen` also splits val and test into the names that occur in train too (the lecture's
names.txt repeats names, and its split keeps them: 13% of val) and the rest, to tell
memorizing the training names from generalizing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model import Vocab
from model.checkpoint import load_checkpoint
from model.registry import LanguageModel
from training.config import TrainConfig
from training.data import EncodedNames, forward, prepare_data, split_names
from training.distill import with_dropout_only

END = 0  # the boundary token's id (model.vocab: id 0): as a target, the end of a name


@dataclass(frozen=True)
class LossBreakdown:
    loss: float  # mean over every prediction (the tables' figure)
    end: float  # mean over the end-of-name predictions
    other: float  # mean over the character predictions
    end_share: float  # end predictions / all predictions
    end_calibration: float  # predicted ends (sum of P(end)) / true ends

    def __str__(self) -> str:
        return (
            f"all {self.loss:.4f} end {self.end:.4f} other {self.other:.4f} "
            f"(end {self.end_share:.1%} of predictions, predicted ends "
            f"{self.end_calibration:.1%} of true)"
        )


@torch.no_grad()
def loss_breakdown(
    model: LanguageModel, data: EncodedNames, batch_names: int = 4096, dropout_samples: int = 0
) -> LossBreakdown:
    """The loss of `model` in eval mode or, with `dropout_samples` > 0, of the average of
    that many of its predictions with dropout on."""
    was_training = model.training
    if dropout_samples:
        with_dropout_only(model)
    else:
        model.eval()
    sums = torch.zeros(2, dtype=torch.float64)  # end, other
    counts = torch.zeros(2, dtype=torch.float64)
    predicted_ends = 0.0
    for batch in data.chunks(batch_names):
        y = batch.y
        if dropout_samples:
            samples = [forward(model, batch, False)[0].softmax(-1) for _ in range(dropout_samples)]
            log_probs = torch.stack(samples).mean(0).log()  # (B, T, V)
        else:
            log_probs = forward(model, batch, False)[0].log_softmax(-1)  # (B, T, V)
        real, end = y >= 0, y == END  # (B, T)
        losses = F.nll_loss(log_probs.transpose(1, 2), y.clamp(min=0), reduction="none")
        for i, mask in enumerate((end, real & ~end)):
            sums[i] += losses[mask].double().sum().cpu()
            counts[i] += mask.sum().cpu()
        predicted_ends += float(log_probs[..., END][real].double().exp().sum())
    model.train(was_training)
    total = float(counts.sum())
    return LossBreakdown(
        loss=float(sums.sum()) / total,
        end=float(sums[0] / counts[0]),
        other=float(sums[1] / counts[1]),
        end_share=float(counts[0]) / total,
        end_calibration=predicted_ends / float(counts[0]),
    )


def seen_and_unseen(
    train_names: list[str], names: list[str], vocab: Vocab, device: torch.device
) -> dict[str, EncodedNames]:
    """`names` split into those that also occur in `train_names` ("in train") and the
    rest ("not in train"); a part with no names is left out."""
    in_train = set(train_names)
    parts = {
        "in train": [n for n in names if n in in_train],
        "not in train": [n for n in names if n not in in_train],
    }
    return {k: EncodedNames.build(v, vocab).to(device) for k, v in parts.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.breakdown", description=__doc__)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint directories")
    parser.add_argument(
        "--splits", nargs="+", default=["train", "val"], choices=["train", "val", "test"]
    )
    parser.add_argument(
        "--dropout-samples",
        type=int,
        default=0,
        metavar="K",
        help="also score the average of K predictions with dropout on",
    )
    parser.add_argument(
        "--seen",
        action="store_true",
        help="also split val and test into names that occur in train too and the rest",
    )
    args = parser.parse_args(argv)
    device = torch.device("cpu")
    for path in args.checkpoints:
        checkpoint = load_checkpoint(path, device=device)
        cfg = TrainConfig.from_dict(checkpoint.meta["training"]["config"])
        corpus, vocab, data = prepare_data(cfg, device)
        if args.seen:  # the names themselves: prepare_data keeps only their encodings
            names = dict(
                zip(
                    ("train", "val", "test"), split_names(corpus.names, cfg.split_seed), strict=True
                )
            )
        for split in args.splits:
            split_data = getattr(data, split)
            print(f"{path} {split}: {loss_breakdown(checkpoint.model, split_data)}")
            if args.seen and split != "train":
                parts = seen_and_unseen(names["train"], names[split], vocab, device)
                for part, part_data in parts.items():
                    result = loss_breakdown(checkpoint.model, part_data)
                    print(f"{path} {split}, {part} ({len(part_data)} names): {result}")
            if args.dropout_samples:
                torch.manual_seed(0)  # the same masks on every run of the command
                ensemble = loss_breakdown(
                    checkpoint.model, split_data, dropout_samples=args.dropout_samples
                )
                print(f"{path} {split}, {args.dropout_samples} dropout samples: {ensemble}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

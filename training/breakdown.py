"""`python -m training.breakdown CKPT [CKPT ...]`: where a model's loss comes from.

Splits each checkpoint's mean loss per character, on the split it was trained with (the
corpus and split recorded in its metadata), into the end-of-name predictions (target
'.') and every other character. The experiment tables say which model is better; this
says on what. Comparing the WaveNet rows with the LSTM one showed that the whole gap
between them is in deciding where a name ends.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.checkpoint import LanguageModel, load_checkpoint
from training.config import TrainConfig
from training.data import EncodedNames
from training.trainer import prepare_data

END = 0  # the boundary token's id (model.vocab: id 0): as a target, the end of a name


@dataclass(frozen=True)
class LossBreakdown:
    loss: float  # mean over every prediction (the tables' figure)
    end: float  # mean over the end-of-name predictions
    other: float  # mean over the character predictions
    end_share: float  # end predictions / all predictions

    def __str__(self) -> str:
        return (
            f"all {self.loss:.4f} end {self.end:.4f} other {self.other:.4f} "
            f"(end {self.end_share:.1%} of predictions)"
        )


@torch.no_grad()
def loss_breakdown(
    model: LanguageModel, data: EncodedNames, batch_names: int = 4096
) -> LossBreakdown:
    was_training = model.training
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64)  # end, other
    counts = torch.zeros(2, dtype=torch.float64)
    for x, y in data.chunks(batch_names):
        logits, _ = model(x)  # (B, T, V)
        losses = F.cross_entropy(logits.transpose(1, 2), y.clamp(min=0), reduction="none")
        real, end = y >= 0, y == END  # (B, T)
        for i, mask in enumerate((end, real & ~end)):
            sums[i] += losses[mask].double().sum().cpu()
            counts[i] += mask.sum().cpu()
    model.train(was_training)
    total = float(counts.sum())
    return LossBreakdown(
        loss=float(sums.sum()) / total,
        end=float(sums[0] / counts[0]),
        other=float(sums[1] / counts[1]),
        end_share=float(counts[0]) / total,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.breakdown", description=__doc__)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint directories")
    parser.add_argument(
        "--splits", nargs="+", default=["train", "val"], choices=["train", "val", "test"]
    )
    args = parser.parse_args(argv)
    device = torch.device("cpu")
    for path in args.checkpoints:
        checkpoint = load_checkpoint(path, device=device)
        cfg = TrainConfig.from_dict(checkpoint.meta["training"]["config"])
        _, _, data = prepare_data(cfg, device)
        for split in args.splits:
            print(f"{path} {split}: {loss_breakdown(checkpoint.model, getattr(data, split))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

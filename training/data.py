"""Splits and batches: names become (input, target) id rows padded to the batch's longest."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from model import IGNORE_INDEX, Vocab
from model.scoring import encode_names


def split_names(names: Sequence[str], seed: int = 42) -> tuple[list[str], list[str], list[str]]:
    """The lecture's split: random.seed(seed); random.shuffle; 80/10/10 train/val/test."""
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)  # same stream as random.seed(seed); random.shuffle
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


@dataclass
class EncodedNames:
    """Every name as a row: x = [., c1 .. cn], y = [c1 .. cn, .], padded on the right."""

    x: Tensor  # (N, L+1) ids, 0 (the boundary token) on padding
    y: Tensor  # (N, L+1) ids, IGNORE_INDEX on padding
    lengths: Tensor  # (N,) name lengths n

    @classmethod
    def build(cls, names: Sequence[str], vocab: Vocab) -> EncodedNames:
        if not names:
            raise ValueError("no names to encode")
        return cls(*encode_names(vocab, names))

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def num_targets(self) -> int:
        """Predictions in the set: one per character plus the end token."""
        return int((self.lengths + 1).sum())

    def batch(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The rows, trimmed to the longest name among them."""
        t = int(self.lengths[rows].max()) + 1
        return self.x[rows, :t], self.y[rows, :t]

    def window_index(self) -> Tensor:
        """Every prediction of the set as a (row, position) pair: (num_targets, 2)."""
        rows = torch.repeat_interleave(torch.arange(len(self)), self.lengths + 1)
        starts = torch.cumsum(self.lengths + 1, 0) - (self.lengths + 1)
        positions = torch.arange(len(rows)) - starts.repeat_interleave(self.lengths + 1)
        return torch.stack([rows, positions], dim=1)

    def window_batch(self, pairs: Tensor) -> tuple[Tensor, Tensor]:
        """The lecture's batches: one prediction per row (the name up to that position);
        every other target is ignored, so BatchNorm statistics count one position a row."""
        rows, positions = pairs[:, 0], pairs[:, 1]
        t = int(positions.max()) + 1
        x = self.x[rows, :t]
        y = torch.full_like(x, IGNORE_INDEX)
        arange = torch.arange(len(rows), device=x.device)
        y[arange, positions] = self.y[rows, positions]
        return x, y

    def to(self, device: torch.device | str) -> EncodedNames:
        return EncodedNames(self.x.to(device), self.y.to(device), self.lengths.to(device))

"""Splits and batches: names become (input, target) id rows padded to the batch's longest."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from model import IGNORE_INDEX, Vocab, WaveNet
from model.registry import LanguageModel
from model.scoring import encode_names
from training.config import TrainConfig
from training.corpus import Corpus, load_corpus

Batch = tuple[Tensor, Tensor, Tensor | None]  # x, y, offsets (packed rows) or None
PACKED_ROW = 64  # positions per row with batch_unit "packed"


def forward(
    model: LanguageModel, batch: Batch, with_targets: bool = True
) -> tuple[Tensor, Tensor | None]:
    """The model on a training batch: logits (B, T, V), and the loss when `with_targets`.
    Packed rows (offsets) only a WaveNet can read."""
    x, y, offsets = batch
    targets = y if with_targets else None
    out: tuple[Tensor, Tensor | None]
    if offsets is not None:
        assert isinstance(model, WaveNet)
        out = model(x, targets, offsets=offsets)
    else:
        out = model(x, targets)
    return out


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

    def chunks(self, batch_names: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The whole set in order, `batch_names` rows at a time (for evaluation)."""
        for start in range(0, len(self), batch_names):
            rows = torch.arange(start, min(start + batch_names, len(self)), device=self.x.device)
            yield self.batch(rows)

    def packed_batch(self, rows: Tensor, row_len: int) -> tuple[Tensor, Tensor, Tensor]:
        """The names of `rows` laid end to end in rows of `row_len` positions (a name
        never split; a new row when the next does not fit), with each position's index
        within its name: x, y, offsets, each (R, row_len). Padding at the end of a row
        has target IGNORE_INDEX. WaveNet-only: the model must know where names start."""
        sizes = (self.lengths[rows] + 1).tolist()  # positions per name
        if max(sizes) > row_len:
            raise ValueError(f"a name needs {max(sizes)} positions, rows have {row_len}")
        row_of, col_of, r, c = [], [], 0, 0
        for size in sizes:
            if c + size > row_len:
                r, c = r + 1, 0
            row_of.append(r)
            col_of.append(c)
            c += size
        counts = torch.tensor(sizes)
        starts = torch.cumsum(counts, 0) - counts
        within = torch.arange(int(counts.sum())) - starts.repeat_interleave(counts)
        name = rows.cpu().repeat_interleave(counts)
        row = torch.tensor(row_of).repeat_interleave(counts)
        col = torch.tensor(col_of).repeat_interleave(counts) + within
        device = self.x.device
        x = torch.zeros(r + 1, row_len, dtype=self.x.dtype, device=device)
        y = torch.full_like(x, IGNORE_INDEX)
        offsets = torch.zeros_like(x)
        name, within, row, col = (t.to(device) for t in (name, within, row, col))
        x[row, col] = self.x[name, within]
        y[row, col] = self.y[name, within]
        offsets[row, col] = within
        return x, y, offsets

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


@dataclass
class Splits:
    train: EncodedNames
    val: EncodedNames
    test: EncodedNames
    sizes: dict[str, int]


def prepare_data(cfg: TrainConfig, device: torch.device) -> tuple[Corpus, Vocab, Splits]:
    """The corpus, its vocabulary (or `cfg.vocab`) and the encoded splits, on `device`."""
    corpus = load_corpus(
        cfg.corpus,
        lowercase=cfg.lowercase,
        allowed=cfg.vocab or None,
        on_bad=cfg.on_bad,
        keep_duplicates=cfg.keep_duplicates,
    )
    vocab = Vocab.from_names([cfg.vocab] if cfg.vocab else corpus.names)
    train, val, test = split_names(corpus.names, seed=cfg.split_seed)
    if not val or not test:
        raise ValueError(f"corpus {cfg.corpus} is too small to split ({len(corpus.names)} names)")
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    train_e, val_e, test_e = (EncodedNames.build(s, vocab).to(device) for s in (train, val, test))
    return corpus, vocab, Splits(train_e, val_e, test_e, sizes)


class Batches:
    """Random training batches of `cfg.batch_unit` from `data`, drawn with `rng`."""

    def __init__(self, cfg: TrainConfig, data: EncodedNames, rng: torch.Generator) -> None:
        self.cfg, self.data, self.rng = cfg, data, rng
        self.windows = data.window_index() if cfg.batch_unit == "windows" else None
        # packed rows: room for a few names each, and for the longest one
        self.packed_row = max(PACKED_ROW, int(data.lengths.max()) + 1)

    def next(self, *, windows: bool = True) -> Batch:
        """A batch; with `windows` false, whole names even for batch_unit "windows"
        (distillation's batches)."""
        device, size = self.data.x.device, self.cfg.batch_size
        if windows and self.windows is not None:
            picks = torch.randint(len(self.windows), (size,), generator=self.rng)
            return (*self.data.window_batch(self.windows[picks].to(device)), None)
        rows = torch.randint(len(self.data), (size,), generator=self.rng).to(device)
        if self.cfg.batch_unit == "packed":
            return self.data.packed_batch(rows, self.packed_row)
        return (*self.data.batch(rows), None)


@torch.no_grad()
def evaluate(model: LanguageModel, data: EncodedNames, batch_names: int = 4096) -> float:
    """Mean loss per predicted character over the whole set, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in data.chunks(batch_names):
        _, loss = model(x, y)
        assert loss is not None
        n = int((y >= 0).sum())
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total / count

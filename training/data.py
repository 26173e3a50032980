"""Splits and batches: names become (input, target) id rows padded to the batch's longest.

A labelled corpus (training/labelled.py) gives one row per (name, labels) with the
labels' ids beside it; its split is by distinct name, so no name is in two parts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from model import IGNORE_INDEX, Vocab, WaveNet
from model.labels import LabelSpace
from model.registry import LanguageModel
from model.scoring import encode_names
from training.config import TrainConfig, oriented
from training.corpus import Corpus, load_corpus
from training.labelled import encode_rows, label_space, split_rows

PACKED_ROW = 64  # positions per row with batch_unit "packed"


class Batch(NamedTuple):
    x: Tensor  # (B, T) ids
    y: Tensor  # (B, T) targets, IGNORE_INDEX on padding
    offsets: Tensor | None = None  # (B, T) packed rows: each position's index in its name
    labels: Tensor | None = None  # (B, L) label ids, (B, T, L) for packed rows; 0: unknown


def forward(
    model: LanguageModel | DistributedDataParallel, batch: Batch, with_targets: bool = True
) -> tuple[Tensor, Tensor | None]:
    """The model (or the model in DDP) on a training batch: logits (B, T, V), and the loss
    when `with_targets`. Packed rows (offsets) and labels only a WaveNet can read."""
    targets = batch.y if with_targets else None
    if batch.offsets is None and batch.labels is None:
        out: tuple[Tensor, Tensor | None] = model(batch.x, targets)
        return out
    assert isinstance(
        model.module if isinstance(model, DistributedDataParallel) else model, WaveNet
    )
    out = model(batch.x, targets, offsets=batch.offsets, labels=batch.labels)
    return out


def split_names(names: Sequence[str], seed: int = 42) -> tuple[list[str], list[str], list[str]]:
    """The lecture's split: random.seed(seed); random.shuffle; 80/10/10 train/val/test."""
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)  # same stream as random.seed(seed); random.shuffle
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


@dataclass
class EncodedNames:
    """Every name as a row: x = [., c1 .. cn], y = [c1 .. cn, .], padded on the right; for
    a labelled corpus, one row per (name, labels), with the label ids and the row's count."""

    x: Tensor  # (N, L+1) ids, 0 (the boundary token) on padding
    y: Tensor  # (N, L+1) ids, IGNORE_INDEX on padding
    lengths: Tensor  # (N,) name lengths n
    labels: Tensor | None = None  # (N, columns) label ids
    counts: Tensor | None = None  # (N,) how many each row stands for (births)

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        vocab: Vocab,
        labels: Tensor | None = None,
        counts: Tensor | None = None,
    ) -> EncodedNames:
        if not names:
            raise ValueError("no names to encode")
        return cls(*encode_names(vocab, names), labels, counts)

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

    def chunks(self, batch_names: int, labels: bool = True) -> Iterator[Batch]:
        """The whole set, `batch_names` rows at a time, shortest names first (so a chunk
        pads little), for evaluation; with `labels` false, a labelled set's labels are
        all unknown."""
        order = torch.argsort(self.lengths, stable=True)
        for start in range(0, len(self), batch_names):
            rows = order[start : start + batch_names]
            row_labels = self.labels[rows] if self.labels is not None else None
            if row_labels is not None and not labels:
                row_labels = torch.zeros_like(row_labels)
            yield Batch(*self.batch(rows), None, row_labels)

    def packed_batch(self, rows: Tensor, row_len: int) -> tuple[Tensor, Tensor, Tensor]:
        """The names of `rows` laid end to end in rows of `row_len` positions (a name
        never split; a new row when the next does not fit), with each position's index
        within its name: x, y, offsets, each (R, row_len). Padding at the end of a row
        has target IGNORE_INDEX. WaveNet-only: the model must know where names start."""
        x, y, offsets, _ = self.packed(rows, row_len)
        assert offsets is not None
        return x, y, offsets

    def packed(self, rows: Tensor, row_len: int, labels: Tensor | None = None) -> Batch:
        """`packed_batch` as a Batch, with `labels` (B, columns) of the rows, if given, at
        every position of their names: (R, row_len, columns), 0 on padding."""
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
        packed_labels = None
        if labels is not None:
            packed_labels = labels.new_zeros(r + 1, row_len, labels.shape[1])
            of_name = torch.arange(len(sizes)).repeat_interleave(counts).to(device)
            packed_labels[row, col] = labels[of_name]  # each name's labels at its positions
        return Batch(x, y, offsets, packed_labels)

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

    def sample(self, n: int, seed: int = 0) -> EncodedNames:
        """`n` rows drawn without replacement (all of them if there are fewer), seeded."""
        if n >= len(self):
            return self
        rows = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        rows = rows.to(self.x.device)
        pick = [t[rows] if t is not None else None for t in (self.labels, self.counts)]
        return EncodedNames(self.x[rows], self.y[rows], self.lengths[rows], *pick)

    def to(self, device: torch.device | str) -> EncodedNames:
        labels, counts = self.labels, self.counts
        return EncodedNames(
            self.x.to(device),
            self.y.to(device),
            self.lengths.to(device),
            labels.to(device) if labels is not None else None,
            counts.to(device) if counts is not None else None,
        )


@dataclass
class Splits:
    train: EncodedNames
    val: EncodedNames
    test: EncodedNames
    sizes: dict[str, int]
    labels: LabelSpace | None = None  # a labelled corpus's, priors from the train split


def prepare_data(cfg: TrainConfig, device: torch.device) -> tuple[Corpus, Vocab, Splits]:
    """The corpus, its vocabulary (or `cfg.vocab`) and the encoded splits, on `device`.
    The split is by name, whatever the direction; a backward run encodes the names
    reversed."""
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
    if corpus.labels is not None and corpus.labels.columns:
        rows = split_rows(corpus.labels, (train, val, test))
        space = label_space(corpus.labels, rows[0])  # priors from the training part
        rows = [[(oriented(n, cfg.direction), v, c) for n, v, c in part] for part in rows]
        train_e, val_e, test_e = (EncodedNames(*encode_rows(r, vocab, space)) for r in rows)
        sizes.update({f"{k}_rows": len(r) for k, r in zip(sizes, rows, strict=True)})
        splits = Splits(train_e.to(device), val_e.to(device), test_e.to(device), sizes, space)
        return corpus, vocab, splits
    parts = [[oriented(n, cfg.direction) for n in part] for part in (train, val, test)]
    train_e, val_e, test_e = (EncodedNames.build(s, vocab).to(device) for s in parts)
    return corpus, vocab, Splits(train_e, val_e, test_e, sizes)


class Batches:
    """Random training batches of `cfg.batch_unit` from `data`, drawn with `rng`. Rows
    are drawn uniformly, or (labelled data, `cfg.row_weights`) in proportion to
    log(1 + count); each label of each row is dropped to unknown with probability
    `cfg.label_dropout`, so the model learns every subset of labels."""

    def __init__(self, cfg: TrainConfig, data: EncodedNames, rng: torch.Generator) -> None:
        self.cfg, self.data, self.rng = cfg, data, rng
        self.windows = data.window_index() if cfg.batch_unit == "windows" else None
        # packed rows: room for a few names each, and for the longest one
        self.packed_row = max(PACKED_ROW, int(data.lengths.max()) + 1)
        self.weights: Tensor | None = None  # of each row; None: uniform
        self.window_weights: Tensor | None = None  # of each window (its row's)
        if cfg.row_weights == "log_count" and data.counts is not None:
            self.weights = torch.log1p(data.counts.double().cpu())
            if self.windows is not None:
                self.window_weights = self.weights[self.windows[:, 0]]

    def draw(self, n: int, windows: bool) -> Tensor:
        """`n` picks, with replacement, of windows or of rows."""
        weights = self.window_weights if windows else self.weights
        if weights is not None:
            return torch.multinomial(weights, n, replacement=True, generator=self.rng)
        population = len(self.data)
        if windows and self.windows is not None:
            population = len(self.windows)
        return torch.randint(population, (n,), generator=self.rng)

    def labels_of(self, rows: Tensor) -> Tensor | None:
        """The rows' label ids, each dropped to unknown (0) with probability label_dropout."""
        if self.data.labels is None:
            return None
        labels = self.data.labels[rows]  # (B, L)
        if self.cfg.label_dropout > 0:
            drop = torch.rand(labels.shape, generator=self.rng) < self.cfg.label_dropout
            labels = labels.masked_fill(drop.to(labels.device), 0)
        return labels

    def next(self, *, windows: bool = True) -> Batch:
        """A batch; with `windows` false, whole names even for batch_unit "windows"
        (distillation's batches)."""
        device, size = self.data.x.device, self.cfg.batch_size
        if windows and self.windows is not None:
            pairs = self.windows[self.draw(size, windows=True)].to(device)
            return Batch(*self.data.window_batch(pairs), None, self.labels_of(pairs[:, 0]))
        rows = self.draw(size, windows=False).to(device)
        labels = self.labels_of(rows)
        if self.cfg.batch_unit == "packed":
            return self.data.packed(rows, self.packed_row, labels)
        return Batch(*self.data.batch(rows), None, labels)


@torch.no_grad()
def evaluate(
    model: LanguageModel, data: EncodedNames, batch_names: int = 4096, labels: bool = True
) -> float:
    """Mean loss per predicted character over the whole set, in eval mode; with `labels`
    false, a labelled set's labels are all unknown."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in data.chunks(batch_names, labels):
        _, loss = forward(model, batch)
        assert loss is not None
        n = int((batch.y >= 0).sum())
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total / count

"""The hierarchical WaveNet of makemore part 5, as a stack of dilated causal convolutions.

The lecture's model embeds a window of 8 characters, fuses neighbouring pairs with a
Linear (FlattenConsecutive(2) + Linear + BatchNorm + tanh), three times, and reads the
next character off the result. Fusing pairs at level i is a kernel-2 convolution at
dilation 2**i, so the same weights, slid along the name, score every position of a
name in one forward pass. Each level here is "concatenate k shifted copies of the input,
then one Linear": exactly the parameterization of the lecture's Linear, so its weights
load unchanged.

Left context: every position before the start of a name sees only the boundary token
'.', so at every level the (conceptual) outputs before time 0 are one constant vector.
We carry that vector ("pad") alongside the batch instead of prepending pad tokens, which
keeps the tree form exact and costs nothing. BatchNorm statistics are taken over batch
and time, over real positions only (padding after a name ends is masked out).

Packed rows (for training speed): a row may hold several names back to back, each
starting with its '.', when `offsets` gives every position's index within its own name.
A tap that would reach back past the start of its name reads the pad vector instead, so
each name sees exactly what it would see alone, and no time is spent on padding.

Global conditioning (the WaveNet paper's, for speakers): with `label_sizes`, every label
column (sex, decade, ...) has an embedding, id 0 standing for "unknown"; their sum h is
projected into every level's pre-activation, after BatchNorm (whose statistics then do not
depend on the labels) and before the activation, and into the head's input. The pad then
depends on the labels too: one per row of labels. Packed rows with labels per position
share the work between positions with the same labels (usually few distinct sets).

Options from the WaveNet paper (gated units, residual and skip connections, a ReLU head,
conditioning) are all off in the lecture's configuration, the defaults below.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers import BN_EPS, CausalConv, Dropout, MaskedBatchNorm, activate

IGNORE_INDEX = -1  # target id of padding positions after a name has ended


@dataclass
class WaveNetConfig:
    vocab_size: int = 27
    n_embd: int = 24
    n_hidden: int = 128
    # Kernel size per level; level i has dilation prod(kernel_sizes[:i]).
    # (2, 2, 2) is the lecture's hierarchical model, (8,) its flat MLP, (3,) the 3-char MLP.
    kernel_sizes: tuple[int, ...] = field(default=(2, 2, 2))
    gated: bool = False  # tanh(filter) * sigmoid(gate) instead of tanh
    residual: bool = False  # each level adds its output to its input (when widths match)
    skip: bool = False  # the head reads the sum of every level's output
    head_hidden: int = 0  # > 0: a ReLU hidden layer of this width before the logits
    dropout: float = 0.0  # on every level's output, while training
    batchnorm: bool = True  # False: no normalization, and the convs get a bias
    bn_momentum: float = 0.1  # the lecture's BatchNorm1d momentum
    # Per label column its number of ids, "unknown" (id 0) included; () for none.
    label_sizes: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        self.label_sizes = tuple(int(n) for n in self.label_sizes)
        if any(n < 2 for n in self.label_sizes):
            raise ValueError(
                f"label_sizes must be >= 2 (unknown and a value), got {self.label_sizes}"
            )
        if not self.kernel_sizes or any(k < 1 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive, got {self.kernel_sizes}")
        for name in ("vocab_size", "n_embd", "n_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.head_hidden < 0:
            raise ValueError(f"head_hidden must be >= 0, got {self.head_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def dilations(self) -> tuple[int, ...]:
        ks = self.kernel_sizes
        return tuple(math.prod(ks[:i]) for i in range(len(ks)))

    @property
    def receptive_field(self) -> int:
        """Characters of context the last level sees (the lecture's block_size)."""
        pairs = zip(self.kernel_sizes, self.dilations, strict=True)
        return 1 + sum((k - 1) * d for k, d in pairs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {**d, "kernel_sizes": list(self.kernel_sizes), "label_sizes": list(self.label_sizes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaveNetConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class LabelRows:
    """The distinct label sets of a batch as rows, each with its label embedding sum
    (R, D), and the row of each batch row (B,) or, for labels per position, of each
    position (B, T); None: one row for the whole batch."""

    emb: Tensor  # (R, D)
    where: Tensor | None  # (B,), (B, T) or None

    def spread(self, v: Tensor) -> Tensor:
        """A per-row tensor (R, C) as the positions see it: (1 or B, 1 or T, C). A shared
        one (C,) stays as it is."""
        if v.dim() == 1:
            return v
        if self.where is None:
            return v[:, None]
        v = v[self.where]
        return v[:, None] if self.where.dim() == 1 else v


class Level(nn.Module):
    """One level: causal conv, BatchNorm (if on), the labels' projection (if any), tanh
    (or the gated unit), dropout. The pad goes through all but the dropout: it stands for
    many positions at once."""

    def __init__(self, in_dim: int, config: WaveNetConfig, kernel: int, dilation: int) -> None:
        super().__init__()
        self.gated = config.gated
        width = config.n_hidden * (2 if config.gated else 1)  # filter and gate halves
        self.conv = CausalConv(in_dim, width, kernel, dilation, bias=not config.batchnorm)
        self.bn = MaskedBatchNorm(width, BN_EPS, config.bn_momentum) if config.batchnorm else None
        # V h of the paper, for filter and gate at once
        self.cond = nn.Linear(config.n_hidden, width, bias=False) if config.label_sizes else None
        self.dropout = Dropout(config.dropout)

    def forward(
        self,
        x: Tensor,
        pad: Tensor,
        mask: Tensor | None,
        offsets: Tensor | None = None,
        rows: LabelRows | None = None,
    ) -> tuple[Tensor, Tensor]:
        seen = None if rows is None else rows.spread(pad)
        x, pad = self.conv(x, pad, offsets, seen)  # (B, T, W), (W,) or (R, W)
        if self.bn is not None:
            x, pad = self.bn(x, pad, mask)
        if rows is not None and self.cond is not None:
            c = self.cond(rows.emb)  # (R, W)
            x, pad = x + rows.spread(c), pad + c
        z, z_pad = activate(x, self.gated), activate(pad, self.gated)  # (B, T, H), (H,)
        return self.dropout(z), z_pad


class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        # one embedding per label column, of width n_hidden; their sum is h
        self.label_emb = nn.ModuleList(nn.Embedding(n, config.n_hidden) for n in config.label_sizes)
        dims = [config.n_embd] + [config.n_hidden] * len(config.kernel_sizes)
        self.levels = nn.ModuleList(
            Level(dims[i], config, k, d)
            for i, (k, d) in enumerate(zip(config.kernel_sizes, config.dilations, strict=True))
        )
        # A level adds its output to its input only where the widths match.
        self.residual = [config.residual and dims[i] == dims[i + 1] for i in range(len(dims) - 1)]
        self.head_cond = (
            nn.Linear(config.n_hidden, config.n_hidden, bias=False) if config.label_sizes else None
        )
        # The WaveNet paper's head is ReLU, 1x1, ReLU, 1x1; the lecture's a single Linear.
        self.head_hidden = (
            nn.Linear(config.n_hidden, config.head_hidden) if config.head_hidden else None
        )
        self.lm_head = nn.Linear(config.head_hidden or config.n_hidden, config.vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.wte.weight)
        for level in self.levels:  # Kaiming for tanh: std = (5/3) / sqrt(fan_in)
            assert isinstance(level, Level)
            nn.init.kaiming_normal_(level.conv.proj.weight, nonlinearity="tanh", mode="fan_in")
            if level.conv.proj.bias is not None:
                nn.init.zeros_(level.conv.proj.bias)
            if level.cond is not None:  # zero: an untrained conditional model is the plain one
                nn.init.zeros_(level.cond.weight)
        for emb in self.label_emb:
            assert isinstance(emb, nn.Embedding)
            nn.init.normal_(emb.weight)
        if self.head_cond is not None:
            nn.init.zeros_(self.head_cond.weight)
        if self.head_hidden is not None:
            nn.init.kaiming_normal_(self.head_hidden.weight, nonlinearity="relu", mode="fan_in")
            nn.init.zeros_(self.head_hidden.bias)
        # A small output layer makes the initial predictions near uniform (loss ~ ln V).
        nn.init.normal_(self.lm_head.weight, std=0.1 / math.sqrt(self.lm_head.in_features))
        nn.init.zeros_(self.lm_head.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def label_rows(self, labels: Tensor | None, idx: Tensor) -> LabelRows | None:
        """The labels (B, L) or (B, T, L) as rows (None: all unknown, one shared row):
        their distinct sets, found through one integer key each (the ids in mixed radix),
        so the pad and the projections are computed once per set (batches and packed
        rows hold few)."""
        sizes = self.config.label_sizes
        if not sizes:
            if labels is not None:
                raise ValueError("this model has no label columns: labels must be None")
            return None
        if labels is None:
            labels = idx.new_zeros(1, len(sizes))
        per_row = labels.dim() == 2 and labels.shape[0] in (1, idx.shape[0])
        if not (per_row or labels.shape[:-1] == idx.shape) or labels.shape[-1] != len(sizes):
            raise ValueError(
                f"labels must be (B, {len(sizes)}) or (B, T, {len(sizes)}) for idx "
                f"{tuple(idx.shape)}, got {tuple(labels.shape)}"
            )
        bounds = torch.tensor(sizes, device=labels.device)
        if bool(((labels < 0) | (labels >= bounds)).any()):
            raise ValueError(f"label ids out of range for label_sizes {sizes}")
        where = None
        if labels.shape[0] > 1:
            radix = torch.tensor([math.prod(sizes[:j]) for j in range(len(sizes))])
            radix = radix.to(labels.device)
            keys, where = torch.unique((labels * radix).sum(-1), return_inverse=True)  # (R,)
            labels = keys[:, None] // radix % bounds  # (R, L)
        emb = sum(e(labels[:, j]) for j, e in enumerate(self.label_emb))  # (R, D)
        assert isinstance(emb, Tensor)
        return LabelRows(emb, where)

    def forward(
        self,
        idx: Tensor,
        targets: Tensor | None = None,
        offsets: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) of ids, starting with the boundary token; targets (B, T) the next
        ids, IGNORE_INDEX on padding. Returns logits (B, T, V) and the mean loss over
        real positions when targets are given. For packed rows, offsets (B, T) is each
        position's index within its name (see the module docstring). labels: ids (B, L)
        per row or (B, T, L) per position, 0 for unknown; None: all unknown."""
        mask = targets != IGNORE_INDEX if targets is not None else None  # (B, T)
        rows = self.label_rows(labels, idx)
        x = self.wte(idx)  # (B, T, C)
        pad = self.wte.weight[0]  # (C,) what every position before the name sees
        skip: Tensor | None = None  # the sum of every level's output
        for level, residual in zip(self.levels, self.residual, strict=True):
            z, z_pad = level(x, pad, mask, offsets, rows)  # (B, T, H), (H,) or (R, H)
            x, pad = (x + z, pad + z_pad) if residual else (z, z_pad)  # (B, T, H)
            if self.config.skip:
                skip = z if skip is None else skip + z
        h = x if skip is None else skip  # (B, T, H)
        if rows is not None and self.head_cond is not None:
            h = h + rows.spread(self.head_cond(rows.emb))
        if self.head_hidden is not None:
            if self.config.skip:
                h = F.relu(h)  # a skip sum is unbounded; a tanh output needs no ReLU
            h = F.relu(self.head_hidden(h))  # (B, T, head_hidden)
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return logits, loss

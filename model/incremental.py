"""Batched incremental evaluation with per-level caches (the Fast WaveNet idea).

A trained WaveNet, put in eval mode, is a fixed function: BatchNorm becomes an affine
map and folds into the conv weights. Generating a character then needs, at each level,
only the level's current input and its inputs at t - d, t - 2d, ... (kernel k, dilation
d): a ring buffer of (k-1)*d past inputs per level. Each new character costs one small
matmul per level for the whole batch, never a re-run of the window.

A conditional model's labels enter every level's pre-activation and the head as one
vector per row: `init_state` computes those once per row (and the rings' pre-name values,
which depend on them), so rows with different labels share a batch and a step costs one
add per level more than without labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
from torch import Tensor, nn

from model.wavenet import Level, WaveNet


@dataclass(frozen=True)
class FoldedLevel:
    """One level with BatchNorm folded in, its k taps' weights side by side.

    weight[:, m*W:(m+1)*W] projects an input onto this level's pre-activation m*d steps
    later, so one matmul of the newest input gives its contribution to now and to every
    future step that will look back at it; the ring keeps those future parts until due.
    """

    weight: Tensor  # (C, k*W): tap offsets 0, d, 2d, ... (newest first)
    bias: Tensor  # (k*W,): the level's bias in the first block, zeros elsewhere
    kernel: int
    dilation: int
    width: int  # W: the conv's output width (2H for gated levels)
    gated: bool

    def activation(self, h: Tensor) -> Tensor:
        """The level's output from its pre-activation (B, W) or (W,), which it may
        overwrite. A gated level's gate half comes pre-halved (see `fold`), so that one
        tanh over the whole of h serves both halves: sigmoid(g) = (1 + tanh(g / 2)) / 2.
        That is 3 ops instead of 5 and no copy of a strided half (tanh has no vectorised
        kernel for one), the same values up to rounding."""
        t = h.tanh_()
        if not self.gated:
            return t
        f, g = t.chunk(2, dim=-1)
        return torch.addcmul(f, f, g).mul_(0.5)  # tanh(f) * sigmoid(gate)

    @property
    def span(self) -> int:
        """How many past steps this level looks back over."""
        return (self.kernel - 1) * self.dilation

    @classmethod
    def fold(cls, level: Level) -> FoldedLevel:
        conv = level.conv
        w: Tensor = conv.proj.weight  # (W, k*C), taps oldest first
        b: Tensor = conv.proj.bias if conv.proj.bias is not None else w.new_zeros(w.shape[0])
        if level.bn is not None:
            scale, shift = level.bn.scale_shift(level.bn.running_mean, level.bn.running_var)
            w, b = w * scale[:, None], b * scale + shift
        W, k = w.shape[0], conv.kernel
        C = w.shape[1] // k
        blocks = [w[:, (k - 1 - m) * C : (k - m) * C].t() for m in range(k)]  # offset m*d
        bias = torch.cat([b, b.new_zeros((k - 1) * W)])
        weight = torch.cat(blocks, dim=1).contiguous()
        if level.gated:  # the gate half of every tap, halved (see `activation`)
            halves = _gate_halves(W, k)
            weight, bias = weight * halves, bias * halves
        return cls(weight, bias, k, conv.dilation, W, level.gated)

    def pre_activation(self, y: Tensor, ring: Tensor, t: int) -> Tensor:
        """The newest input's part of y (B, k*W) plus the parts of older inputs now due."""
        W, d, span = self.width, self.dilation, self.span
        if not span:
            return y
        if self.kernel == 2:  # the usual case, in fewer ops: one older input, whole
            slot = t % span  # (t - d) % span too: the older input's slot, reused
            h = torch.add(y.narrow(1, 0, W), ring.select(1, slot))
            ring.select(1, slot).copy_(y.narrow(1, W, W))
            return h
        h = y[:, :W]
        for m in range(1, self.kernel):
            h = h + ring[:, (t - m * d) % span, (m - 1) * W : m * W]
        ring[:, t % span] = y[:, W:]  # this input's parts for later steps
        return h


def _gate_halves(width: int, taps: int) -> Tensor:
    """1 on the filter half and 0.5 on the gate half of each of `taps` blocks of `width`."""
    half = torch.ones(width)
    half[width // 2 :] = 0.5
    return half.repeat(taps)


@dataclass(frozen=True)
class State:
    """The rows of a batch being generated: per level a ring (B, span, (k-1)*W) of past
    inputs' future contributions; for a conditional model each row's conditioning per
    level (B, W) and for the head (B, H)."""

    rings: list[Tensor]
    conds: list[Tensor] | None = None
    head: Tensor | None = None

    def __len__(self) -> int:
        return self.rings[0].shape[0]

    def take(self, keep: Tensor) -> State:
        """Only these rows (batch compaction)."""
        return State(
            [ring[keep] for ring in self.rings],
            None if self.conds is None else [c[keep] for c in self.conds],
            None if self.head is None else self.head[keep],
        )

    @classmethod
    def cat(cls, states: Sequence[State]) -> State:
        """The rows of several states, in order. A fresh state's rings hold one value in
        every slot, so its rows may join a batch at any step t."""
        rings = [torch.cat(r) for r in zip(*(s.rings for s in states), strict=True)]
        if states[0].conds is None:
            return cls(rings)
        conds = [torch.cat(c) for c in zip(*(s.conds or [] for s in states), strict=True)]
        return cls(rings, conds, torch.cat([s.head for s in states if s.head is not None]))


class IncrementalWaveNet:
    """An eval-mode WaveNet stepping one character at a time for a batch of rows.
    Handles every WaveNetConfig: gated units, residual and skip sums, the hidden head
    (dropout is off in eval mode)."""

    def __init__(self, model: WaveNet) -> None:
        cfg = model.config
        self.residual, self.skip = cfg.residual, cfg.skip
        with torch.no_grad():
            self.embedding = model.wte.weight.detach().clone()  # (V, C)
            self.levels = [FoldedLevel.fold(level) for level in model.levels]  # type: ignore[arg-type]
            first = self.levels[0]
            # The first level's input is an embedding row: precompute its projections.
            self.first_table = torch.addmm(first.bias, self.embedding, first.weight)  # (V, k*W)
            hidden = model.head_hidden
            self.head_hidden = (
                None
                if hidden is None
                else (hidden.weight.detach().t().contiguous(), hidden.bias.detach().clone())
            )
            self.head_weight = model.lm_head.weight.detach().t().contiguous()  # (H, V)
            self.head_bias = model.lm_head.bias.detach().clone()
            # Conditioning: the label tables (V_j, D), the projections of their sum.
            self.label_tables = [
                e.weight.detach().clone() for e in model.label_emb if isinstance(e, nn.Embedding)
            ]
            self.cond_weight = self._cond_weight(model)
            self.cond_ends = list(accumulate(lvl.width for lvl in self.levels))
            self.pad_projections = self._pad_projections(None)
        self.vocab_size = self.embedding.shape[0]
        self.device = self.embedding.device

    @staticmethod
    def _cond_weight(model: WaveNet) -> Tensor | None:
        """Every level's and the head's projection of the label sum, side by side:
        (D, widths of the levels + H), or None without labels."""
        if model.head_cond is None:
            return None
        weights = []
        for level in model.levels:
            assert isinstance(level, Level) and level.cond is not None
            w = level.cond.weight  # (W, D)
            weights.append(w * _gate_halves(w.shape[0], 1)[:, None] if level.gated else w)
        return torch.cat([*weights, model.head_cond.weight]).detach().t().contiguous()

    def _pad_projections(self, conds: list[Tensor] | None) -> list[Tensor]:
        """Every level's input before the name starts is one vector (see WaveNet's
        docstring), per row (B, kW) when conditioned, else shared (kW,); its projections
        fill the rings at the start."""
        projections = []
        x = self.embedding[0]
        for i, lvl in enumerate(self.levels):
            y = (
                self.first_table[0]
                if i == 0
                else torch.addmm(lvl.bias, x.view(-1, x.shape[-1]), lvl.weight)
            )
            y = y.view(-1, lvl.kernel * lvl.width) if conds is not None else y.view(-1)
            projections.append(y)
            h = y.view(*y.shape[:-1], lvl.kernel, lvl.width).sum(dim=-2)  # taps see one value
            if conds is not None:
                h = h + conds[i]  # (B, W)
            x = self._combine(x, lvl.activation(h))
        return projections

    def _combine(self, x: Tensor, z: Tensor) -> Tensor:
        return x + z if self.residual and z.shape[-1] == x.shape[-1] else z

    def init_state(self, batch: int, labels: Tensor | None = None) -> State:
        """The state of `batch` rows about to start their names; labels (B, L) their
        label ids (0: unknown; None: all unknown), for a conditional model only."""
        if self.cond_weight is None:
            if labels is not None:
                raise ValueError("this model has no label columns: labels must be None")
            pads = self.pad_projections
            return State(
                [
                    y[lvl.width :].expand(batch, lvl.span, -1).clone()
                    for y, lvl in zip(pads, self.levels, strict=True)
                ]
            )
        L = len(self.label_tables)
        labels = torch.zeros(batch, L, dtype=torch.long) if labels is None else labels
        labels = labels.to(self.device)
        if labels.shape != (batch, L):
            raise ValueError(f"labels must be ({batch}, {L}), got {tuple(labels.shape)}")
        sizes = torch.tensor([table.shape[0] for table in self.label_tables], device=self.device)
        if bool(((labels < 0) | (labels >= sizes)).any()):
            raise ValueError(f"label ids out of range for label_sizes {tuple(sizes.tolist())}")
        emb = sum(table[labels[:, j]] for j, table in enumerate(self.label_tables))  # (B, D)
        assert isinstance(emb, Tensor)
        c = emb @ self.cond_weight  # (B, widths + H)
        ends = self.cond_ends
        conds = [c[:, a:b].contiguous() for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        pads = self._pad_projections(conds)
        rings = [
            y[:, lvl.width :].unsqueeze(1).expand(batch, lvl.span, -1).clone()
            for y, lvl in zip(pads, self.levels, strict=True)
        ]
        return State(rings, conds, c[:, ends[-1] :].contiguous())

    def step(self, tokens: Tensor, state: State, t: int) -> Tensor:
        """Feed the tokens at position t (B,); returns logits for position t (B, V).
        Updates `state` in place."""
        x = self.embedding[tokens] if self.residual else tokens  # only read when residual
        first = self.first_table[tokens]
        skip: Tensor | None = None
        conds = state.conds
        for i, (lvl, ring) in enumerate(zip(self.levels, state.rings, strict=True)):
            y = first if i == 0 else torch.addmm(lvl.bias, x, lvl.weight)
            h = lvl.pre_activation(y, ring, t)
            if conds is not None:
                h = h + conds[i]
            z = lvl.activation(h)  # h is a fresh tensor here, free to overwrite
            x = self._combine(x, z)  # without residuals this is just z
            if self.skip:
                skip = z if skip is None else skip + z
        h = skip if skip is not None else x
        if state.head is not None:
            h = h + state.head
        if self.head_hidden is not None:
            if self.skip:
                h = torch.relu(h)
            h = torch.relu(torch.addmm(self.head_hidden[1], h, self.head_hidden[0]))
        return torch.addmm(self.head_bias, h, self.head_weight)  # (B, V)

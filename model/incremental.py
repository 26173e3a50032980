"""Batched incremental evaluation with per-level caches (the Fast WaveNet idea).

A trained WaveNet, put in eval mode, is a fixed function: BatchNorm becomes an affine
map and folds into the conv weights. Generating a character then needs, at each level,
only the level's current input and its inputs at t - d, t - 2d, ... (kernel k, dilation
d): a ring buffer of (k-1)*d past inputs per level. Each new character costs one small
matmul per level for the whole batch, never a re-run of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from model.layers import activate
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
        """The level's output from its pre-activation (B, W) or (W,)."""
        return activate(h, self.gated)

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
        return cls(weight, bias, k, conv.dilation, W, level.gated)

    def pre_activation(self, y: Tensor, ring: Tensor, t: int) -> Tensor:
        """The newest input's part of y (B, k*W) plus the parts of older inputs now due."""
        W, d = self.width, self.dilation
        h = y[:, :W]
        if self.span:
            for m in range(1, self.kernel):
                h = h + ring[:, (t - m * d) % self.span, (m - 1) * W : m * W]
            ring[:, t % self.span] = y[:, W:]  # this input's parts for later steps
        return h


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
            self.pad_projections = self._pad_projections()
        self.vocab_size = self.embedding.shape[0]
        self.device = self.embedding.device

    def _pad_projections(self) -> list[Tensor]:
        """Every level's input before the name starts is one constant vector (see
        WaveNet's docstring); its projections fill the rings at the start."""
        projections = []
        x = self.embedding[0]
        for i, lvl in enumerate(self.levels):
            y = self.first_table[0] if i == 0 else torch.addmm(lvl.bias, x[None], lvl.weight)[0]
            projections.append(y)
            h = y.view(lvl.kernel, lvl.width).sum(dim=0)  # every tap sees the same input
            x = self._combine(x, lvl.activation(h))
        return projections

    def _combine(self, x: Tensor, z: Tensor) -> Tensor:
        return x + z if self.residual and z.shape[-1] == x.shape[-1] else z

    def init_state(self, batch: int) -> list[Tensor]:
        """Per level a ring (B, span, (k-1)*W) of future contributions of past inputs,
        filled with those of the pre-name value."""
        return [
            y[lvl.width :].expand(batch, lvl.span, -1).clone()
            for y, lvl in zip(self.pad_projections, self.levels, strict=True)
        ]

    def step(self, tokens: Tensor, state: list[Tensor], t: int) -> Tensor:
        """Feed the tokens at position t (B,); returns logits for position t (B, V).
        Updates `state` in place."""
        x = self.embedding[tokens] if self.residual else tokens  # only read when residual
        first = self.first_table[tokens]
        skip: Tensor | None = None
        for i, (lvl, ring) in enumerate(zip(self.levels, state, strict=True)):
            y = first if i == 0 else torch.addmm(lvl.bias, x, lvl.weight)
            h = lvl.pre_activation(y, ring, t)
            # pre-activations that are fresh tensors take tanh in place (no allocation)
            fresh = lvl.span and not lvl.gated
            z = h.tanh_() if fresh else lvl.activation(h)
            x = self._combine(x, z)  # without residuals this is just z
            if self.skip:
                skip = z if skip is None else skip + z
        h = skip if skip is not None else x
        if self.head_hidden is not None:
            if self.skip:
                h = torch.relu(h)
            h = torch.relu(torch.addmm(self.head_hidden[1], h, self.head_hidden[0]))
        return torch.addmm(self.head_bias, h, self.head_weight)  # (B, V)

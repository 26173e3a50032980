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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -1  # target id of padding positions after a name has ended


@dataclass
class WaveNetConfig:
    vocab_size: int = 27
    n_embd: int = 24
    n_hidden: int = 128
    # Kernel size per level; level i has dilation prod(kernel_sizes[:i]).
    # (2, 2, 2) is the lecture's hierarchical model, (8,) its flat MLP, (3,) the 3-char MLP.
    kernel_sizes: tuple[int, ...] = field(default=(2, 2, 2))
    bn_momentum: float = 0.1  # the lecture's BatchNorm1d momentum
    bn_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        if not self.kernel_sizes or any(k < 1 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive, got {self.kernel_sizes}")
        for name in ("vocab_size", "n_embd", "n_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(math.prod(self.kernel_sizes[:i]) for i in range(len(self.kernel_sizes)))

    @property
    def receptive_field(self) -> int:
        """Characters of context the last level sees (the lecture's block_size)."""
        return math.prod(self.kernel_sizes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kernel_sizes"] = list(self.kernel_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WaveNetConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


class CausalConv(nn.Module):
    """Kernel-k causal convolution at dilation d, as one Linear over k concatenated taps.

    The taps are ordered oldest first, like the lecture's FlattenConsecutive.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.proj = nn.Linear(kernel * in_dim, out_dim, bias=False)  # BatchNorm follows

    def forward(self, x: Tensor, pad: Tensor) -> tuple[Tensor, Tensor]:
        B, T, C = x.shape
        k, d = self.kernel, self.dilation
        if k > 1:
            x = torch.cat([pad.expand(B, (k - 1) * d, C), x], dim=1)  # (B, T + (k-1)d, C)
            x = torch.cat([x[:, j * d : j * d + T] for j in range(k)], dim=-1)  # (B, T, k*C)
        return self.proj(x), self.proj(pad.repeat(k))  # (B, T, H), (H,)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over batch and time that counts only the positions in `mask`."""

    def __init__(self, dim: int, eps: float, momentum: float) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.running_mean: Tensor
        self.running_var: Tensor

    def scale_shift(self, mean: Tensor, var: Tensor) -> tuple[Tensor, Tensor]:
        scale = self.weight * torch.rsqrt(var + self.eps)
        return scale, self.bias - mean * scale

    def forward(self, x: Tensor, pad: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.training:
            rows = x[mask] if mask is not None else x.reshape(-1, x.shape[-1])  # (N, C)
            var, mean = torch.var_mean(rows, dim=0, correction=0)
            with torch.no_grad():
                n = rows.shape[0]
                unbiased = var * (n / max(n - 1, 1))
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale, shift = self.scale_shift(mean, var)
        return x * scale + shift, pad * scale + shift


class Level(nn.Module):
    """One level of the hierarchy: causal conv, BatchNorm, tanh."""

    def __init__(self, in_dim: int, config: WaveNetConfig, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = CausalConv(in_dim, config.n_hidden, kernel, dilation)
        self.bn = MaskedBatchNorm(config.n_hidden, config.bn_eps, config.bn_momentum)

    def forward(self, x: Tensor, pad: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        x, pad = self.conv(x, pad)
        x, pad = self.bn(x, pad, mask)
        return torch.tanh(x), torch.tanh(pad)


class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        dims = [config.n_embd] + [config.n_hidden] * len(config.kernel_sizes)
        self.levels = nn.ModuleList(
            Level(dims[i], config, k, d)
            for i, (k, d) in enumerate(zip(config.kernel_sizes, config.dilations, strict=True))
        )
        self.lm_head = nn.Linear(config.n_hidden, config.vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.wte.weight)
        for level in self.levels:  # Kaiming for tanh: std = (5/3) / sqrt(fan_in)
            assert isinstance(level, Level)
            nn.init.kaiming_normal_(level.conv.proj.weight, nonlinearity="tanh", mode="fan_in")
        # A small output layer makes the initial predictions near uniform (loss ~ ln V).
        nn.init.normal_(self.lm_head.weight, std=0.1 / math.sqrt(self.config.n_hidden))
        nn.init.zeros_(self.lm_head.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) of ids, starting with the boundary token; targets (B, T) the next
        ids, IGNORE_INDEX on padding. Returns logits (B, T, V) and the mean loss over
        real positions when targets are given."""
        mask = targets != IGNORE_INDEX if targets is not None else None  # (B, T)
        x = self.wte(idx)  # (B, T, C)
        pad = self.wte.weight[0]  # (C,) what every position before the name sees
        for level in self.levels:
            x, pad = level(x, pad, mask)  # (B, T, H)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return logits, loss

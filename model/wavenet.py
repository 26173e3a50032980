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
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

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
    # Dilation per level; empty: the lecture's tree above (each input position reaches the
    # output by one path). Given, e.g. kernels (3, 3, 3) at (1, 2, 4) as in the TCN paper,
    # the levels' windows overlap and each position reaches the output by several paths.
    dilations_override: tuple[int, ...] = field(default=())
    bn_momentum: float = 0.1  # the lecture's BatchNorm1d momentum
    bn_eps: float = 1e-5
    # From the WaveNet paper, all off in the lecture's model:
    stacks: int = 1  # repeat the kernel pattern (dilations restart at 1 each time)
    gated: bool = False  # tanh(filter) * sigmoid(gate) instead of tanh
    residual: bool = False  # each level adds its output to its input (when widths match)
    skip: bool = False  # the head reads the sum of every level's output
    head_hidden: int = 0  # > 0: a ReLU hidden layer of this width before the logits
    dropout: float = 0.0  # on every level's output, while training
    # One rate per level (stacks included) instead of `dropout` at every level: the upper
    # levels carry what the end of a name needs from far back, and each level's dropout
    # compounds along that path.
    level_dropout: tuple[float, ...] = field(default=())
    # "position": a fresh dropout mask at every position. "name": one mask per name,
    # shared by all its positions (variational dropout, Gal and Ghahramani 2016): a
    # dropped channel is gone for the whole name, so no neighbour can stand in for it.
    dropout_mask: Literal["position", "name"] = "position"
    # > 0: a second dropout on the same outputs, one mask per name at this rate, on top of
    # `dropout`'s masks (per-name masks favour the end of a name, per-position ones its
    # characters; this takes some of each).
    name_dropout: float = 0.0
    batchnorm: bool = True
    # LayerNorm instead (batchnorm False): each position normalized over its own channels
    # (the filter and gate halves apart), the same in training and eval. BatchNorm's running
    # statistics include the variance dropout adds, which is gone when serving.
    layernorm: bool = False
    # Not in the paper: regularizers and extras tried on a small corpus (see the README).
    # Where the dropped-out level outputs go. "both": the residual stream and the skip sum,
    # one mask. "split": the skip sum (what the head reads) gets `dropout`; the residual
    # stream, which later levels read through time, its own mask of `residual_dropout`
    # (0: clean, as an LSTM drops only its non-recurrent connections).
    dropout_path: Literal["both", "split"] = "both"
    residual_dropout: float = 0.0  # dropout_path "split" only
    input_dropout: float = 0.0  # on the character embeddings, while training
    head_dropout: float = 0.0  # on the head's hidden layer, while training
    # > 0: a learned embedding of each character's position within its name (positions
    # from max_positions - 1 on share one), added to the character embedding. (Within the
    # receptive field the pad already tells the position; this did not help.)
    max_positions: int = 0
    # > 0: the same, but added to what the head reads (the skip sum): the end-of-name
    # decision then sees the name's length directly, not through dropped-out levels.
    head_positions: int = 0

    def __post_init__(self) -> None:
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        self.dilations_override = tuple(int(d) for d in self.dilations_override)
        self.level_dropout = tuple(float(p) for p in self.level_dropout)
        if not self.kernel_sizes or any(k < 1 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be positive, got {self.kernel_sizes}")
        if self.dilations_override and (
            len(self.dilations_override) != len(self.kernel_sizes)
            or any(d < 1 for d in self.dilations_override)
        ):
            raise ValueError(
                f"dilations_override must give one positive dilation per level "
                f"({len(self.kernel_sizes)}), got {self.dilations_override}"
            )
        for name in ("vocab_size", "n_embd", "n_hidden", "stacks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in (
            "dropout",
            "name_dropout",
            "residual_dropout",
            "input_dropout",
            "head_dropout",
        ):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.level_dropout and (
            len(self.level_dropout) != len(self.kernels)
            or not all(0.0 <= p < 1.0 for p in self.level_dropout)
        ):
            raise ValueError(
                f"level_dropout must give one rate in [0, 1) per level "
                f"({len(self.kernels)}), got {self.level_dropout}"
            )
        if self.head_hidden < 0:
            raise ValueError(f"head_hidden must be >= 0, got {self.head_hidden}")
        if self.layernorm and self.batchnorm:
            raise ValueError("layernorm replaces BatchNorm: set batchnorm False with it")
        if self.dropout_mask not in ("position", "name"):
            raise ValueError(
                f"dropout_mask must be 'position' or 'name', got {self.dropout_mask!r}"
            )
        if self.dropout_path not in ("both", "split"):
            raise ValueError(f"dropout_path must be 'both' or 'split', got {self.dropout_path!r}")
        if self.dropout_path == "split" and not (self.skip and self.residual):
            raise ValueError("dropout_path 'split' needs residual and skip connections")
        for name in ("max_positions", "head_positions"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def kernels(self) -> tuple[int, ...]:
        """Kernel size of every level, stacks included."""
        return self.kernel_sizes * self.stacks

    @property
    def dropouts(self) -> tuple[float, ...]:
        """Dropout rate of every level's output."""
        return self.level_dropout or (self.dropout,) * len(self.kernels)

    @property
    def dilations(self) -> tuple[int, ...]:
        ks = self.kernel_sizes
        tree = tuple(math.prod(ks[:i]) for i in range(len(ks)))
        return (self.dilations_override or tree) * self.stacks

    @property
    def receptive_field(self) -> int:
        """Characters of context the last level sees (the lecture's block_size)."""
        return 1 + sum((k - 1) * d for k, d in zip(self.kernels, self.dilations, strict=True))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kernel_sizes"] = list(self.kernel_sizes)
        d["dilations_override"] = list(self.dilations_override)
        d["level_dropout"] = list(self.level_dropout)
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

    def __init__(
        self, in_dim: int, out_dim: int, kernel: int, dilation: int, bias: bool = False
    ) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.proj = nn.Linear(kernel * in_dim, out_dim, bias=bias)  # no bias when BN follows

    def forward(
        self, x: Tensor, pad: Tensor, offsets: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        B, T, C = x.shape
        k, d = self.kernel, self.dilation
        if k > 1 and offsets is None:  # one name per row, starting at position 0
            x = torch.cat([pad.expand(B, (k - 1) * d, C), x], dim=1)  # (B, T + (k-1)d, C)
            x = torch.cat([x[:, j * d : j * d + T] for j in range(k)], dim=-1)  # (B, T, k*C)
        elif offsets is not None and k > 1:  # packed rows: taps before a name's start read the pad
            taps = []
            for j in range(k):
                back = (k - 1 - j) * d  # how far this tap looks back
                if back == 0:
                    taps.append(x)
                    continue
                n = min(back, T)
                shifted = torch.cat([pad.expand(B, n, C), x[:, : T - n]], dim=1)  # (B, T, C)
                taps.append(torch.where((offsets >= back).unsqueeze(-1), shifted, pad))
            x = torch.cat(taps, dim=-1)  # (B, T, k*C)
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
            # Weighted sums as (1, N) @ (N, C) products: on CPU several times faster than
            # var_mean over x[mask] (a reduction along rows, plus an indexed copy).
            rows = x.reshape(-1, x.shape[-1])  # (N, C)
            if mask is None:
                weights = rows.new_ones(1, rows.shape[0])
            else:
                weights = mask.reshape(1, -1).to(rows.dtype)  # (1, N)
            n = int(weights.sum())
            mean = (weights @ rows).squeeze(0) / n  # (C,)
            var = (weights @ (rows - mean).square()).squeeze(0) / n  # (C,)
            with torch.no_grad():
                unbiased = var * (n / max(n - 1, 1))
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale, shift = self.scale_shift(mean, var)
        return x * scale + shift, pad * scale + shift


class GroupLayerNorm(nn.Module):
    """LayerNorm over each of `groups` equal slices of the channels (a gated level's filter
    and gate halves), with one learned scale and shift per channel."""

    def __init__(self, dim: int, groups: int, eps: float) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        slices = x.reshape(*shape[:-1], self.groups, shape[-1] // self.groups)  # (..., G, C/G)
        normed = F.layer_norm(slices, slices.shape[-1:], eps=self.eps).reshape(shape)
        return normed * self.weight + self.bias


class Dropout(nn.Dropout):
    """nn.Dropout, with its CPU mask drawn by torch.rand instead of bernoulli_: the same
    distribution, about 2.5x faster on CPU, where bernoulli_ was 14% of a training step."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)  # 1 with probability 1 - p
        return x * keep.mul_(1.0 / (1.0 - self.p))


class NameDropout(nn.Module):
    """Dropout with one mask per name, shared by its positions. `names` (B, T) numbers
    the names within each row (packed rows hold several); None: one name per row."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, names: Tensor | None) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        B, T, C = x.shape
        n = 1 if names is None else int(names.max()) + 1
        keep = torch.full((B, n, C), 1.0 - self.p, device=x.device, dtype=x.dtype)
        mask = torch.bernoulli(keep) / (1.0 - self.p)  # (B, n, C)
        if names is not None:
            mask = mask.gather(1, names.unsqueeze(-1).expand(B, T, C))  # (B, T, C)
        return x * mask


def activate(h: Tensor, gated: bool) -> Tensor:
    """tanh, or the gated unit tanh(filter) * sigmoid(gate) on the two halves of h."""
    if not gated:
        return torch.tanh(h)
    f, g = h.chunk(2, dim=-1)
    return torch.tanh(f) * torch.sigmoid(g)


class Level(nn.Module):
    """One level: causal conv, BatchNorm (or LayerNorm), tanh (or the gated unit); its
    dropout module.
    Returns the level's activation; dropout, residual and skip sums are the model's
    business (dropout_path decides which paths see the dropped output)."""

    def __init__(
        self, in_dim: int, config: WaveNetConfig, kernel: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        self.gated = config.gated
        width = config.n_hidden * (2 if config.gated else 1)
        normalized = config.batchnorm or config.layernorm
        self.conv = CausalConv(in_dim, width, kernel, dilation, bias=not normalized)
        self.bn = (
            MaskedBatchNorm(width, config.bn_eps, config.bn_momentum) if config.batchnorm else None
        )
        groups = 2 if config.gated else 1
        self.ln = GroupLayerNorm(width, groups, config.bn_eps) if config.layernorm else None
        self.dropout: Dropout | NameDropout | None = None
        if dropout and config.dropout_mask == "name":
            self.dropout = NameDropout(dropout)
        elif dropout:
            self.dropout = Dropout(dropout)
        self.name_dropout = NameDropout(config.name_dropout) if config.name_dropout else None

    def forward(
        self, x: Tensor, pad: Tensor, mask: Tensor | None, offsets: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        x, pad = self.conv(x, pad, offsets)
        if self.bn is not None:
            x, pad = self.bn(x, pad, mask)
        if self.ln is not None:
            x, pad = self.ln(x), self.ln(pad)
        return activate(x, self.gated), activate(pad, self.gated)

    def drop(self, z: Tensor, names: Tensor | None) -> Tensor:
        """The level's output as the later levels and the head see it while training."""
        if isinstance(self.dropout, NameDropout):
            z = cast(Tensor, self.dropout(z, names))
        elif self.dropout is not None:
            z = cast(Tensor, self.dropout(z))
        if self.name_dropout is not None:
            z = cast(Tensor, self.name_dropout(z, names))
        return z


class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        positions = config.max_positions
        self.wpe = nn.Embedding(positions, config.n_embd) if positions else None  # (P, C)
        head_positions = config.head_positions
        self.hpe = nn.Embedding(head_positions, config.n_hidden) if head_positions else None
        self.residual_drop = (
            Dropout(config.residual_dropout)
            if config.dropout_path == "split" and config.residual_dropout
            else None
        )
        self.input_drop = Dropout(config.input_dropout) if config.input_dropout else None
        kernels, dilations = config.kernels, config.dilations
        dims = [config.n_embd] + [config.n_hidden] * len(kernels)
        self.levels = nn.ModuleList(
            Level(dims[i], config, k, d, p)
            for i, (k, d, p) in enumerate(zip(kernels, dilations, config.dropouts, strict=True))
        )
        # The WaveNet paper's head is ReLU, 1x1, ReLU, 1x1; the lecture's a single Linear.
        self.head_hidden = (
            nn.Linear(config.n_hidden, config.head_hidden) if config.head_hidden else None
        )
        self.head_drop = Dropout(config.head_dropout) if config.head_dropout else None
        self.lm_head = nn.Linear(config.head_hidden or config.n_hidden, config.vocab_size)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.wte.weight)
        for positions in (self.wpe, self.hpe):  # starts as the model without positions
            if positions is not None:
                nn.init.zeros_(positions.weight)
        for level in self.levels:  # Kaiming for tanh: std = (5/3) / sqrt(fan_in)
            assert isinstance(level, Level)
            nn.init.kaiming_normal_(level.conv.proj.weight, nonlinearity="tanh", mode="fan_in")
            if level.conv.proj.bias is not None:
                nn.init.zeros_(level.conv.proj.bias)
        if self.head_hidden is not None:
            nn.init.kaiming_normal_(self.head_hidden.weight, nonlinearity="relu", mode="fan_in")
            nn.init.zeros_(self.head_hidden.bias)
        # A small output layer makes the initial predictions near uniform (loss ~ ln V).
        nn.init.normal_(self.lm_head.weight, std=0.1 / math.sqrt(self.lm_head.in_features))
        nn.init.zeros_(self.lm_head.bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, idx: Tensor, targets: Tensor | None = None, offsets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) of ids, starting with the boundary token; targets (B, T) the next
        ids, IGNORE_INDEX on padding. Returns logits (B, T, V) and the mean loss over
        real positions when targets are given. For packed rows, offsets (B, T) is each
        position's index within its name (see the module docstring)."""
        mask = targets != IGNORE_INDEX if targets is not None else None  # (B, T)
        pos = offsets if offsets is not None else torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(pos.clamp(max=self.config.max_positions - 1))  # (B or 1, T, C)
        if self.input_drop is not None:
            x = self.input_drop(x)
        pad = self.wte.weight[0]  # (C,) what every position before the name sees
        names = None  # each position's name within its row, for masks shared by a name
        per_name = self.config.dropout_mask == "name" or self.config.name_dropout > 0
        if offsets is not None and self.training and per_name:
            names = torch.cumsum(offsets == 0, dim=1) - 1  # (B, T)
        skip = None
        for level in cast("Iterable[Level]", self.levels):
            z, z_pad = level(x, pad, mask, offsets)  # (B, T, H)
            # not the pad: it stands for many positions at once
            dropped = level.drop(z, names)
            carried = dropped
            if self.config.dropout_path == "split":
                carried = z if self.residual_drop is None else self.residual_drop(z)
            if self.config.residual and z.shape[-1] == x.shape[-1]:
                x, pad = x + carried, pad + z_pad
            else:
                x, pad = carried, z_pad
            skip = dropped if skip is None else skip + dropped
        h = skip if self.config.skip else x
        assert h is not None
        if self.hpe is not None:
            h = h + self.hpe(pos.clamp(max=self.config.head_positions - 1))  # (B or 1, T, H)
        if self.head_hidden is not None:
            if self.config.skip:
                h = F.relu(h)  # a skip sum is unbounded; a tanh output needs no ReLU
            h = F.relu(self.head_hidden(h))
        if self.head_drop is not None:
            h = self.head_drop(h)
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return logits, loss

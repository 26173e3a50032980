"""The WaveNet's layers: causal convolution, masked BatchNorm, a fast CPU dropout, the
(gated) activation.

The conv and BatchNorm carry a `pad` beside the batch: the value every position before
the start of a name has at that layer (see model/wavenet.py). It is one vector (C,) in an
unconditional model; with labels it depends on them, one per row of labels (R, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-5  # BatchNorm's epsilon (the lecture's, torch's default)


class CausalConv(nn.Module):
    """Kernel-k causal convolution at dilation d, as one Linear over k concatenated taps.

    The taps are ordered oldest first, like the lecture's FlattenConsecutive, so the
    lecture's Linear weights load unchanged.
    """

    def __init__(
        self, in_dim: int, out_dim: int, kernel: int, dilation: int, bias: bool = False
    ) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.proj = nn.Linear(kernel * in_dim, out_dim, bias=bias)  # no bias when BN follows

    def forward(
        self, x: Tensor, pad: Tensor, offsets: Tensor | None = None, seen: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """pad (C,) or per row (R, C); `seen` is the pad each position sees, (C,), (B, 1, C)
        or (B, T, C), when that is not just `pad`. Returns (B, T, H) and the pad's (H,)
        or (R, H)."""
        if self.kernel > 1:
            at = pad if seen is None else seen
            x = self.taps(x, at) if offsets is None else self.packed_taps(x, at, offsets)
        taps = pad.repeat(self.kernel) if pad.dim() == 1 else pad.repeat(1, self.kernel)
        return self.proj(x), self.proj(taps)  # every tap of a pad sees the pad

    def taps(self, x: Tensor, pad: Tensor) -> Tensor:
        """One name per row, starting at position 0: (B, T, C) -> (B, T, k*C)."""
        B, T, C = x.shape
        k, d = self.kernel, self.dilation
        fill = pad if pad.dim() == 1 else pad[:, :1]  # (C,) or (B, 1, C): the row's name's
        x = torch.cat([fill.expand(B, (k - 1) * d, C), x], dim=1)  # (B, T + (k-1)d, C)
        return torch.cat([x[:, j * d : j * d + T] for j in range(k)], dim=-1)  # (B, T, k*C)

    def packed_taps(self, x: Tensor, pad: Tensor, offsets: Tensor) -> Tensor:
        """Packed rows, offsets (B, T) each position's index within its name: a tap that
        reaches back past the start of its name reads the pad (that name's, when the pad
        is per position)."""
        B, T, C = x.shape
        k, d = self.kernel, self.dilation
        taps = []
        for j in range(k):
            back = (k - 1 - j) * d  # how far this tap looks back
            if back == 0:
                taps.append(x)
                continue
            n = min(back, T)
            # the first n positions take the pad below whatever fills them here
            fill = (pad if pad.dim() == 1 else pad[:, :n]).expand(B, n, C)
            shifted = torch.cat([fill, x[:, : T - n]], dim=1)  # (B, T, C)
            taps.append(torch.where((offsets >= back).unsqueeze(-1), shifted, pad))
        return torch.cat(taps, dim=-1)  # (B, T, k*C)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over batch and time that counts only the positions in `mask`."""

    def __init__(self, dim: int, eps: float = BN_EPS, momentum: float = 0.1) -> None:
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


class Dropout(nn.Dropout):
    """nn.Dropout, with its CPU mask drawn by torch.rand instead of bernoulli_: the same
    distribution, about 2.5x faster on CPU, where bernoulli_ was 14% of a training step."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, self.training)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)  # 1 with probability 1 - p
        return x * keep.mul_(1.0 / (1.0 - self.p))


def activate(h: Tensor, gated: bool) -> Tensor:
    """tanh, or the gated unit tanh(filter) * sigmoid(gate) on the two halves of h."""
    if not gated:
        return torch.tanh(h)
    f, g = h.chunk(2, dim=-1)
    # tanh has no vectorised kernel for a strided half: on (4096, 128) of a (4096, 256)
    # it took 1.9 ms, 14 times the 0.13 ms of a contiguous copy (sigmoid does not care)
    return torch.tanh(f.contiguous()) * torch.sigmoid(g)

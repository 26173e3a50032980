"""Batched incremental sampling with per-level caches (the Fast WaveNet idea).

A trained WaveNet, put in eval mode, is a fixed function: BatchNorm becomes an affine
map and folds into the conv weights. Generating a character then needs, at each level,
only the level's current input and its inputs at t - d, t - 2d, ... (kernel k, dilation
d): a ring buffer of (k-1)*d past inputs per level. Each new character costs one small
matmul per level for the whole batch, never a re-run of the window.

The engine moves ids; names and characters live in `Vocab`. Randomness comes from an
explicit `torch.Generator`, and each row draws one uniform number per step from it
whether or not the row is still running, so a row's name does not depend on how the
batch was compacted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.wavenet import Level, WaveNet


@dataclass(frozen=True)
class FoldedLevel:
    weight: Tensor  # (k*C, H) BatchNorm folded in
    bias: Tensor  # (H,)
    kernel: int
    dilation: int

    @property
    def span(self) -> int:
        """How many past inputs this level looks back over."""
        return (self.kernel - 1) * self.dilation


class IncrementalWaveNet:
    """An eval-mode WaveNet stepping one character at a time for a batch of rows."""

    def __init__(self, model: WaveNet) -> None:
        with torch.no_grad():
            self.embedding = model.wte.weight.detach().clone()  # (V, C)
            self.levels: list[FoldedLevel] = []
            for level in model.levels:
                assert isinstance(level, Level)
                bn = level.bn
                scale, shift = bn.scale_shift(bn.running_mean, bn.running_var)
                w = level.conv.proj.weight * scale[:, None]  # (H, k*C)
                self.levels.append(
                    FoldedLevel(
                        w.t().contiguous(), shift.clone(), level.conv.kernel, level.conv.dilation
                    )
                )
            self.head_weight = model.lm_head.weight.detach().t().contiguous()  # (H, V)
            self.head_bias = model.lm_head.bias.detach().clone()
            # What each level sees before the name starts (see WaveNet's docstring).
            self.pads = [self.embedding[0]]
            for lvl in self.levels[:-1]:
                self.pads.append(
                    torch.tanh(self.pads[-1].repeat(lvl.kernel) @ lvl.weight + lvl.bias)
                )
        self.vocab_size = self.embedding.shape[0]
        self.device = self.embedding.device

    def init_state(self, batch: int) -> list[Tensor]:
        """One ring buffer (B, span, C) per level, filled with the pre-name value."""
        return [
            pad.expand(batch, lvl.span, -1).clone()
            for pad, lvl in zip(self.pads, self.levels, strict=True)
        ]

    def step(self, tokens: Tensor, state: list[Tensor], t: int) -> Tensor:
        """Feed the tokens at position t (B,); returns logits for position t (B, V).
        Updates `state` in place."""
        x = self.embedding[tokens]  # (B, C)
        for lvl, ring in zip(self.levels, state, strict=True):
            if lvl.span:
                taps = [
                    ring[:, (t - m * lvl.dilation) % lvl.span] for m in range(lvl.kernel - 1, 0, -1)
                ]
                h = torch.cat([*taps, x], dim=-1) @ lvl.weight + lvl.bias  # (B, H)
                ring[:, t % lvl.span] = x
            else:
                h = x @ lvl.weight + lvl.bias
            x = torch.tanh(h)
        return x @ self.head_weight + self.head_bias  # (B, V)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None
    top_p: float | None = None
    prefix: tuple[int, ...] = ()  # ids the names start with
    min_length: int = 1  # characters, prefix included
    max_length: int = 32

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be >= 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("need 1 <= min_length <= max_length")
        if len(self.prefix) > self.max_length:
            raise ValueError("prefix is longer than max_length")


def filter_logits(logits: Tensor, params: SamplingParams) -> Tensor:
    """Temperature, top-k and top-p applied to logits (B, V); removed tokens get -inf."""
    logits = logits / params.temperature
    if params.top_k is not None and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p is not None and params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        # drop a token when the tokens before it already reach top_p (the first always stays)
        drop = probs.cumsum(dim=-1) - probs >= params.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter_(-1, order, sorted_logits)
    return logits


def choose(logits: Tensor, uniform: Tensor, params: SamplingParams) -> Tensor:
    """Pick one id per row: argmax at temperature 0, else inverse-CDF with `uniform`."""
    if params.temperature == 0:
        return logits.argmax(dim=-1)
    probs = F.softmax(filter_logits(logits, params), dim=-1)
    cdf = probs.cumsum(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze(-1)  # (B, 1)
    # right=True: the first id whose cumulative mass exceeds the target, so ids of
    # zero probability are never picked
    return torch.searchsorted(cdf, target, right=True).squeeze(-1).clamp_(max=logits.shape[-1] - 1)


@torch.inference_mode()
def sample(
    net: IncrementalWaveNet, n: int, params: SamplingParams, generator: torch.Generator
) -> tuple[list[list[int]], list[float]]:
    """n names as id lists (without boundary tokens) and their log-probabilities under the
    model at temperature 1 (natural log, every character and the end token)."""
    device = net.device
    state = net.init_state(n)
    rows = torch.arange(n, device=device)  # which original row each batch row is
    tokens = torch.zeros(n, dtype=torch.long, device=device)
    out = torch.zeros(n, params.max_length + 1, dtype=torch.long, device=device)
    logprob = torch.zeros(n, device=device)
    lengths = torch.full((n,), params.max_length, dtype=torch.long, device=device)
    running = torch.ones(n, dtype=torch.bool, device=device)

    for t in range(params.max_length + 1):  # position t predicts character t+1 or the end
        logits = net.step(tokens, state, t)  # (B, V)
        uniform = torch.rand(n, generator=generator, device=device)[rows]
        if t < len(params.prefix):
            nxt = torch.full_like(tokens, params.prefix[t])
        elif t == params.max_length:
            nxt = torch.zeros_like(tokens)  # the end is forced at max_length
        else:
            if t < params.min_length:
                logits_masked = logits.clone()
                logits_masked[:, 0] = float("-inf")  # no end before min_length
            else:
                logits_masked = logits
            nxt = choose(logits_masked, uniform, params)
        step_logprob = F.log_softmax(logits, dim=-1).gather(-1, nxt[:, None]).squeeze(-1)
        logprob[rows] += torch.where(running, step_logprob, 0.0)
        out[rows, t] = nxt
        ended = running & (nxt == 0)
        lengths[rows[ended]] = t
        running &= nxt != 0
        tokens = nxt
        alive = int(running.sum())
        if alive == 0:
            break
        if alive <= 0.75 * len(rows):  # compact: finished rows stop costing
            keep = running.nonzero().squeeze(-1)
            rows, tokens, running = rows[keep], tokens[keep], running[keep]
            state = [ring[keep] for ring in state]

    out_list, len_list = out.tolist(), lengths.tolist()
    return [row[:length] for row, length in zip(out_list, len_list, strict=True)], logprob.tolist()

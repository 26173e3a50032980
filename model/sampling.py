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

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.wavenet import GroupLayerNorm, Level, WaveNet, activate


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
    norm: GroupLayerNorm | None = None  # LayerNorm does not fold: applied to each step

    def activation(self, h: Tensor) -> Tensor:
        """The level's output from its pre-activation (B, W) or (W,)."""
        if self.norm is not None:
            h = self.norm(h)
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
        norm = None if level.ln is None else copy.deepcopy(level.ln).requires_grad_(False)
        return cls(weight, bias, k, conv.dilation, W, level.gated, norm)

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
    Handles every WaveNetConfig: gated units, residual and skip sums, learned positions,
    the hidden head (dropout is off in eval mode)."""

    def __init__(self, model: WaveNet) -> None:
        cfg = model.config
        self.residual, self.skip = cfg.residual, cfg.skip
        with torch.no_grad():
            self.embedding = model.wte.weight.detach().clone()  # (V, C)
            self.levels = [FoldedLevel.fold(level) for level in model.levels]  # type: ignore[arg-type]
            first = self.levels[0]
            # The first level's input is an embedding row: precompute its projections.
            self.first_table = torch.addmm(first.bias, self.embedding, first.weight)  # (V, k*W)
            # Learned positions add to the embedding: their projections add to the table's.
            self.positions: Tensor | None = None  # (P, C)
            self.position_table: Tensor | None = None  # (P, k*W)
            if model.wpe is not None:
                self.positions = model.wpe.weight.detach().clone()
                self.position_table = self.positions @ first.weight
            self.head_positions = None if model.hpe is None else model.hpe.weight.detach().clone()
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
        if self.positions is not None and self.position_table is not None:
            p = min(t, len(self.positions) - 1)
            first = first + self.position_table[p]
            x = x + self.positions[p] if self.residual else x
        skip: Tensor | None = None
        for i, (lvl, ring) in enumerate(zip(self.levels, state, strict=True)):
            y = first if i == 0 else torch.addmm(lvl.bias, x, lvl.weight)
            h = lvl.pre_activation(y, ring, t)
            # pre-activations that are fresh tensors take tanh in place (no allocation)
            fresh = lvl.span and not lvl.gated and lvl.norm is None
            z = h.tanh_() if fresh else lvl.activation(h)
            x = self._combine(x, z)  # without residuals this is just z
            if self.skip:
                skip = z if skip is None else skip + z
        h = skip if skip is not None else x
        if self.head_positions is not None:
            h = h + self.head_positions[min(t, len(self.head_positions) - 1)]
        if self.head_hidden is not None:
            if self.skip:
                h = torch.relu(h)
            h = torch.relu(torch.addmm(self.head_hidden[1], h, self.head_hidden[0]))
        return torch.addmm(self.head_bias, h, self.head_weight)  # (B, V)


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


@dataclass(frozen=True)
class SampleJob:
    """n names to sample with one set of controls from one random stream."""

    n: int
    params: SamplingParams
    generator: torch.Generator


class RowControls:
    """The controls of every row of a batch of jobs, as tensors (B,)."""

    def __init__(self, jobs: list[SampleJob], vocab_size: int, device: torch.device) -> None:
        ps = [job.params for job in jobs]
        counts = torch.tensor([job.n for job in jobs])
        # one (jobs, fields) table, expanded to rows in one go: batches hold many small jobs
        table = (
            torch.tensor(
                [
                    [
                        p.temperature,
                        p.top_k or vocab_size,
                        p.top_p if p.top_p is not None else 1.0,
                        p.min_length,
                        p.max_length,
                        len(p.prefix),
                    ]
                    for p in ps
                ],
                dtype=torch.float64,
            )
            .repeat_interleave(counts, dim=0)
            .to(device)
        )
        self.temperature = table[:, 0].float()
        self.top_k, self.top_p = table[:, 1].long(), table[:, 2].float()
        self.min_length, self.max_length = table[:, 3].long(), table[:, 4].long()
        self.prefix_length = table[:, 5].long()
        # Greedy where the float32 temperature is 0: that includes temperatures too small
        # for float32 (below about 1e-45), whose limit greedy is.
        self.greedy = self.temperature == 0
        self.any_greedy = bool(self.greedy.any())  # skip work no row needs
        self.unit_temperature = all(p.temperature in (0, 1) for p in ps)
        self.filtered = any(p.top_k is not None or p.top_p is not None for p in ps)
        self.longest_prefix = max(len(p.prefix) for p in ps)
        self.steps = max(p.max_length for p in ps) + 1
        self.prefix = torch.zeros(len(jobs), max(self.longest_prefix, 1), dtype=torch.long)
        for i, p in enumerate(ps):
            if p.prefix:
                self.prefix[i, : len(p.prefix)] = torch.tensor(p.prefix)
        self.prefix = self.prefix.repeat_interleave(counts, dim=0).to(device)  # (B, L)

    def take(self, keep: Tensor) -> None:
        """Keep only these rows (batch compaction)."""
        for name in (
            "temperature",
            "greedy",
            "top_k",
            "top_p",
            "min_length",
            "max_length",
            "prefix_length",
            "prefix",
        ):
            setattr(self, name, getattr(self, name)[keep])


def filter_rows(logits: Tensor, rows: RowControls) -> Tensor:
    """Temperature, top-k then top-p, per row, on logits (B, V); removed ids get -inf."""
    if not rows.unit_temperature:
        # Shift each row's top logit to 0 first: a tiny temperature (say 1e-40) then sends
        # the rest to -inf, which is the greedy limit, instead of inf - inf = NaN.
        logits = logits - logits.amax(dim=-1, keepdim=True)
        logits = logits / torch.where(rows.greedy, 1.0, rows.temperature)[:, None]
    if not rows.filtered:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    ranks = torch.arange(logits.shape[-1], device=logits.device)
    sorted_logits = sorted_logits.masked_fill(ranks >= rows.top_k[:, None], float("-inf"))
    probs = F.softmax(sorted_logits, dim=-1)
    # drop an id when the ids before it already reach top_p (the first always stays)
    # (rows without top_p skip this: rounding can make the cumulative mass reach 1 early)
    drop = (probs.cumsum(dim=-1) - probs >= rows.top_p[:, None]) & (rows.top_p[:, None] < 1)
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


def filter_logits(logits: Tensor, params: SamplingParams) -> Tensor:
    """filter_rows for a batch whose rows all share `params`."""
    job = SampleJob(logits.shape[0], params, torch.Generator())
    return filter_rows(logits, RowControls([job], logits.shape[-1], logits.device))


def choose(logits: Tensor, uniform: Tensor, rows: RowControls) -> Tensor:
    """Pick one id per row: argmax where the temperature is 0, else inverse-CDF sampling
    with `uniform`."""
    cdf = F.softmax(filter_rows(logits, rows), dim=-1).cumsum_(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze_(-1)  # (B, 1)
    # right=True: the first id whose cumulative mass exceeds the target, so ids of
    # zero probability are never picked
    picked = torch.searchsorted(cdf, target, right=True).squeeze_(-1)
    picked = picked.clamp_(max=logits.shape[-1] - 1)
    if not rows.any_greedy:
        return picked
    return torch.where(rows.greedy, logits.argmax(dim=-1), picked)


@torch.inference_mode()
def sample_jobs(
    net: IncrementalWaveNet, jobs: list[SampleJob]
) -> list[tuple[list[list[int]], list[float]]]:
    """Sample every job in one batch. Returns per job its names as id lists (without
    boundary tokens) and their log-probabilities under the model at temperature 1 (natural
    log, every character and the end token).

    A job's rows draw one uniform number each per step from the job's own generator for as
    long as any of them runs, so a job gets the same names alone or batched with others.
    """
    device = net.device
    n = sum(job.n for job in jobs)
    rows = RowControls(jobs, net.vocab_size, device)
    job_of_row = torch.repeat_interleave(torch.arange(len(jobs)), torch.tensor([j.n for j in jobs]))
    state = net.init_state(n)
    alive_rows: Tensor | None = None  # original row of each batch row, once compacted
    tokens = torch.zeros(n, dtype=torch.long, device=device)
    out = torch.zeros(n, rows.steps, dtype=torch.long, device=device)
    logprob = torch.zeros(n, device=device)  # per original row, filled at compaction
    batch_logprob = torch.zeros(n, device=device)  # per current batch row
    running = torch.ones(n, dtype=torch.bool, device=device)
    job_running = [True] * len(jobs)

    for t in range(rows.steps):  # position t predicts character t+1 or the end
        logits = net.step(tokens, state, t)  # (B, V)
        uniform = torch.cat(
            [
                torch.rand(job.n, generator=job.generator, device=device)
                if job_running[i]
                else torch.zeros(job.n, device=device)
                for i, job in enumerate(jobs)
            ]
        )
        if alive_rows is not None:
            uniform = uniform[alive_rows]
        masked = logits
        if t < int(rows.min_length.max()):  # no end before min_length
            masked = logits.clone()
            masked[:, 0] = masked[:, 0].masked_fill(t < rows.min_length, float("-inf"))
        nxt = choose(masked, uniform, rows)
        if t < rows.longest_prefix:  # forced prefix characters
            forced = t < rows.prefix_length
            nxt = torch.where(forced, rows.prefix[:, min(t, rows.prefix.shape[1] - 1)], nxt)
        nxt = nxt.masked_fill(t >= rows.max_length, 0)  # the end is forced at max_length
        step_logprob = F.log_softmax(logits, dim=-1).gather(-1, nxt[:, None]).squeeze_(-1)
        batch_logprob += step_logprob * running  # finished rows add nothing
        if alive_rows is None:
            out[:, t] = nxt
        else:
            out[alive_rows, t] = nxt
        running &= nxt != 0
        tokens = nxt
        alive = int(running.sum())
        if alive == 0:
            break
        if len(jobs) > 1:  # which jobs still have rows running (and so keep drawing)
            originals = running.nonzero().squeeze(-1)
            if alive_rows is not None:
                originals = alive_rows[originals]
            counts = torch.bincount(job_of_row[originals.cpu()], minlength=len(jobs))
            job_running = (counts > 0).tolist()
        if alive <= 0.75 * len(tokens):  # compact: finished rows stop costing
            keep = running.nonzero().squeeze_(-1)
            done = (~running).nonzero().squeeze_(-1)
            logprob[done if alive_rows is None else alive_rows[done]] = batch_logprob[done]
            alive_rows = keep if alive_rows is None else alive_rows[keep]
            tokens, running, batch_logprob = tokens[keep], running[keep], batch_logprob[keep]
            state = [ring[keep] for ring in state]
            rows.take(keep)
    logprob[slice(None) if alive_rows is None else alive_rows] = batch_logprob

    # A name ends at its first end token (rows stepped after their end hold junk after it).
    lengths = (out == 0).int().argmax(dim=-1).tolist()
    names = [row[:length] for row, length in zip(out.tolist(), lengths, strict=True)]
    logprobs = logprob.tolist()
    results, start = [], 0
    for job in jobs:
        results.append((names[start : start + job.n], logprobs[start : start + job.n]))
        start += job.n
    return results


def sample(
    net: IncrementalWaveNet, n: int, params: SamplingParams, generator: torch.Generator
) -> tuple[list[list[int]], list[float]]:
    """n names with one set of controls: sample_jobs with a single job."""
    return sample_jobs(net, [SampleJob(n, params, generator)])[0]

"""The sampling controls of a batch of requests as tensors, and the batched sampling loop
over the cached network (model/incremental.py). The controls are the requests' own
(model/request.py): this module only lays them out per row.

The engine moves ids; names and characters live in `Vocab`. Randomness comes from an
explicit `torch.Generator`, and each row draws one uniform number per step from it
whether or not the row is still running, so a row's name does not depend on how the
batch was compacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.incremental import IncrementalWaveNet
from model.request import GenerateRequest


@dataclass(frozen=True)
class SampleJob:
    """n names with the controls of `request`, from one random stream. The sampler moves
    ids: `prefix` is the request's prefix, encoded. (`request.n` is the engine's business:
    a filtered request samples in rounds, one job each.)"""

    n: int
    request: GenerateRequest
    prefix: tuple[int, ...]
    generator: torch.Generator


class RowControls:
    """The controls of every row of a batch of jobs, as tensors (B,)."""

    def __init__(self, jobs: list[SampleJob], vocab_size: int, device: torch.device) -> None:
        reqs = [job.request for job in jobs]
        counts = torch.tensor([job.n for job in jobs])
        # one (jobs, fields) table, expanded to rows in one go: batches hold many small jobs
        table = (
            torch.tensor(
                [
                    [
                        r.temperature,
                        r.top_k or vocab_size,
                        r.top_p if r.top_p is not None else 1.0,
                        r.min_length,
                        r.max_length,
                        len(job.prefix),
                    ]
                    for r, job in zip(reqs, jobs, strict=True)
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
        self.unit_temperature = all(r.temperature in (0, 1) for r in reqs)
        self.filtered = any(r.top_k is not None or r.top_p is not None for r in reqs)
        self.longest_prefix = max(len(job.prefix) for job in jobs)
        self.steps = max(r.max_length for r in reqs) + 1
        self.prefix = torch.zeros(len(jobs), max(self.longest_prefix, 1), dtype=torch.long)
        for i, job in enumerate(jobs):
            if job.prefix:
                self.prefix[i, : len(job.prefix)] = torch.tensor(job.prefix)
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


def filter_logits(logits: Tensor, request: GenerateRequest) -> Tensor:
    """filter_rows for a batch whose rows all share the controls of `request`."""
    job = SampleJob(logits.shape[0], request, (), torch.Generator())
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
            state = state.take(keep)
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
    net: IncrementalWaveNet,
    n: int,
    request: GenerateRequest,
    generator: torch.Generator,
    prefix: Sequence[int] = (),
) -> tuple[list[list[int]], list[float]]:
    """n names with the controls of `request` (and its prefix as ids): sample_jobs with a
    single job."""
    return sample_jobs(net, [SampleJob(n, request, tuple(prefix), generator)])[0]

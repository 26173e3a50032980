"""A sample job: n names under one request's controls, from one random stream (what
model/sampling.py's Batch runs), and the work only some jobs need."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.guidance import guided
from model.request import GenerateRequest


@dataclass(frozen=True)
class SampleJob:
    """n names with the controls of `request`, from one random stream. The sampler moves
    ids: `prefix` is the ids every row starts with (the request's prefix encoded, or its
    ending reversed for a backward network), `labels` its label ids (a conditional
    model's; None: unknown); `row_prefixes`, when given, one prefix per row instead.
    (`request.n` is the engine's business: it serves a request as one or more jobs.)"""

    n: int
    request: GenerateRequest
    prefix: tuple[int, ...]
    generator: torch.Generator
    labels: tuple[int, ...] | None = None
    row_prefixes: tuple[tuple[int, ...], ...] | None = None

    @property
    def longest_prefix(self) -> int:
        if self.row_prefixes is None:
            return len(self.prefix)
        return max(map(len, self.row_prefixes), default=0)


def needs_of(job: SampleJob) -> list[str]:
    """The work only some jobs need: prefixes, temperatures other than 0 and 1, greedy
    rows (temperature 0 in float32), top-k or top-p, guidance."""
    req = job.request
    needs = ["prefix"] if job.longest_prefix else []
    if guided(job.labels, req.guidance):
        needs.append("guided")
    if req.temperature not in (0, 1):
        needs.append("temperature")
    if torch.tensor(req.temperature, dtype=torch.float32) == 0:
        needs.append("greedy")
    if req.top_k is not None or req.top_p is not None:
        needs.append("filter")
    return needs

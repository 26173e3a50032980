"""Classifier-free guidance for names under labels: a guided row has a twin with the
labels unknown, stepped beside it in the same batch; the row samples from u + w (c - u),
c its logits and u its twin's, w the request's `guidance`; the twin takes the same
character. (The logprob a name gets stays the model's under the labels.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from model.jobs import SampleJob

UNGUIDED, GUIDED, TWIN = range(3)  # a row's GUIDE column: plain, guided, or a twin


def guided(job: SampleJob) -> bool:
    """Sampled with classifier-free guidance: each row has a twin with the labels unknown,
    stepped beside it; the row samples from u + w (c - u) (c its logits, u its twin's,
    w the request's guidance) and the twin follows with the same character."""
    return job.labels is not None and any(job.labels) and job.request.guidance != 1


def guide_logits(
    logits: torch.Tensor, read: torch.Tensor, guide: torch.Tensor, guidance: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided rows' logits become u + w (c - u), in place; returns the guided rows and
    their twins, in pairs (a row and its twin read the same arena row)."""
    rows = (guide == GUIDED).nonzero().squeeze_(1)
    twins = (guide == TWIN).nonzero().squeeze_(1)
    rows, twins = rows[read[rows].argsort()], twins[read[twins].argsort()]
    c, u = logits[rows], logits[twins]  # (G, V) each
    logits.index_copy_(0, rows, torch.lerp(u, c, guidance[rows, None]))
    return rows, twins

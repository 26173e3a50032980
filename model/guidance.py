"""Classifier-free guidance for names under labels: a guided row has a twin with the
labels unknown, stepped beside it in the same batch; the row samples from u + w (c - u),
c its logits and u its twin's, w the request's `guidance`; the twin takes the same
character. (The logprob a name gets stays the model's under the labels.)"""

from __future__ import annotations

from collections.abc import Sequence

import torch

UNGUIDED, GUIDED, TWIN = range(3)  # a row's GUIDE column: plain, guided, or a twin


def guided(labels: Sequence[int] | None, guidance: float) -> bool:
    """Names under these label ids (0: unknown) at this weight are sampled with guidance,
    each row with a twin: some label is known and the weight is not 1."""
    return labels is not None and any(labels) and guidance != 1


def rows_per_name(labels: Sequence[int] | None, guidance: float) -> int:
    """2 for a guided name (its row and its twin), else 1."""
    return 2 if guided(labels, guidance) else 1


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

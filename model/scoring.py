"""Log-likelihood of candidate names under the model, batched, in one forward pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from model.vocab import Vocab
from model.wavenet import IGNORE_INDEX, WaveNet


def encode_names(vocab: Vocab, names: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
    """Rows x = [., c1 .. cn] and y = [c1 .. cn, .], right-padded (x with 0, y with
    IGNORE_INDEX) to the longest name; and the lengths n. Raises UnknownCharacterError."""
    lengths = torch.tensor([len(n) for n in names], dtype=torch.long)  # (N,)
    ids = torch.tensor([i for name in names for i in vocab.encode(name)], dtype=torch.long)
    return (*padded_rows(ids, lengths), lengths)


def padded_rows(ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """encode_names' x and y (N, longest + 1) of names given as their ids one after
    another (sum of lengths,) and their lengths (N,)."""
    longest = int(lengths.max()) if len(lengths) else 0
    inside = torch.arange(longest + 1) < lengths[:, None]  # (N, T): a name's characters
    x = torch.zeros(len(lengths), longest + 1, dtype=torch.long)
    x[:, 1:][inside[:, :-1]] = ids  # row-major: each name's ids in order
    y = torch.full((len(lengths), longest + 1), IGNORE_INDEX, dtype=torch.long)
    y[inside] = ids
    y[torch.arange(len(lengths)), lengths] = 0  # the end
    return x, y


@dataclass(frozen=True)
class NameScore:
    name: str
    logprob: float  # natural log of P(name), every character and the end token
    logprob_per_char: float  # logprob / (characters + 1)
    perplexity: float  # exp(-logprob_per_char)
    char_probs: list[float]  # P of each character given the ones before, then of the end


def char_logprobs(logits: Tensor, y: Tensor) -> Tensor:
    """log P of each target (B, T), 0 on padding."""
    logp = F.log_softmax(logits.float(), dim=-1).gather(-1, y.clamp(min=0)[..., None])
    return logp.squeeze(-1).masked_fill(y == IGNORE_INDEX, 0.0)  # (B, T)


@torch.inference_mode()
def score_names(
    model: WaveNet,
    vocab: Vocab,
    names: Sequence[str],
    labels: Tensor | Sequence[Sequence[int]] | None = None,
    chunk: int = 4096,
) -> list[NameScore]:
    """Scores in input order, under labels (N, L) of ids (0: unknown) for a conditional
    model; None: all unknown. The model must be in eval mode (running BatchNorm stats)."""
    if model.training:
        raise ValueError("score_names needs the model in eval mode")
    device = next(model.parameters()).device
    if labels is not None and len(names):
        labels = torch.as_tensor(labels, dtype=torch.long, device=device)
        if labels.dim() != 2 or labels.shape[0] != len(names):
            raise ValueError(f"labels must be ({len(names)}, L), got {tuple(labels.shape)}")
    scores: list[NameScore] = []
    for start in range(0, len(names), chunk):
        part = names[start : start + chunk]
        x, y, lengths = (t.to(device) for t in encode_names(vocab, part))
        rows = None if labels is None else labels[start : start + chunk]
        logits, _ = model(x, labels=rows)  # (B, T, V)
        logp = char_logprobs(logits, y)  # (B, T)
        totals = logp.sum(dim=-1).tolist()
        probs = logp.exp().tolist()
        for name, total, row, n in zip(part, totals, probs, lengths.tolist(), strict=True):
            per_char = total / (n + 1)
            scores.append(NameScore(name, total, per_char, math.exp(-per_char), row[: n + 1]))
    return scores


@torch.inference_mode()
def logprobs_of_ids(
    model: WaveNet,
    rows: Sequence[Sequence[int]],
    labels: Sequence[Sequence[int]] | None = None,
    chunk: int = 512,
) -> list[float]:
    """score_names' logprob of names given as id lists (labels (N, L) as there), faster
    for many: the rows go by length, so a chunk pads little, and no name is encoded."""
    if not rows:
        return []
    device = next(model.parameters()).device
    lengths = torch.tensor([len(r) for r in rows])
    flat = torch.tensor([i for r in rows for i in r], dtype=torch.long)
    starts = torch.cumsum(lengths, 0) - lengths
    out = torch.empty(len(rows))
    order = torch.argsort(lengths, stable=True)
    for part in torch.split(order, chunk):
        n = lengths[part]
        col = torch.arange(int(n.sum())) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
        x, y = padded_rows(flat[torch.repeat_interleave(starts[part], n) + col], n)
        given = None if labels is None else torch.tensor([labels[i] for i in part.tolist()])
        logits, _ = model(x.to(device), labels=None if given is None else given.to(device))
        out[part] = char_logprobs(logits, y.to(device)).sum(dim=-1).cpu()
    return out.tolist()

"""A request's text constraints (prefix, ends_with, contains) as a plan for the samplers:
which network samples first and from which forced characters, whether the forward
network then grows the name on, and which names pass. GenerateRequest's docstring says
what distribution each combination samples; this module makes it so.

A backward network reads names right to left: it was trained on reversed names, so the
ending of a name is its prefix, and the cached sampler's forced prefix serves endings
exactly. Its names come back reversed, with its own log-probabilities; the forward
network rescores them (`rescore`), since a name's logprob is always the forward one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from model.request import GenerateRequest
from model.scoring import logprobs_of_ids
from model.vocab import Vocab
from model.wavenet import WaveNet

Direction = Literal["forward", "backward"]


@dataclass(frozen=True)
class Plan:
    direction: Direction  # the network of the first stage
    forced: tuple[int, ...]  # the first stage's forced ids, in that network's order
    grow: bool  # contains: the forward network continues each left part + substring
    prefix: str
    ends_with: str
    contains: str

    def accepts(self, name: str) -> bool:
        return (
            name.startswith(self.prefix) and name.endswith(self.ends_with) and self.contains in name
        )

    def decode(self, vocab: Vocab, ids: Sequence[int], direction: Direction) -> str:
        """A name from the ids a network of `direction` sampled."""
        return vocab.decode(reversed(ids) if direction == "backward" else ids)


@torch.inference_mode()
def start_logprob(model: WaveNet, ids: Sequence[int], labels: Sequence[int] | None) -> float:
    """log P(a name starts with `ids`) under `model` at temperature 1: one pass."""
    if not ids:
        return 0.0
    x = torch.tensor([[0, *ids]], device=next(model.parameters()).device)
    rows = None if labels is None else torch.tensor([list(labels)], device=x.device)
    logits, _ = model(x, labels=rows)  # (1, T, V)
    logp = F.log_softmax(logits[0, :-1].float(), dim=-1)  # (T - 1, V)
    return float(logp.gather(1, x[0, 1:, None]).sum())


def plan_for(
    req: GenerateRequest,
    vocab: Vocab,
    forward: WaveNet,
    backward: WaveNet | None,
    labels: Sequence[int] | None,
) -> Plan:
    """How to serve `req`'s text constraints (`backward` is needed by ends_with and
    contains; the caller has checked). With both a prefix and an ending, the rarer side
    is fixed: the smaller of P(prefix) under the forward network and P(ending) under the
    backward one, each from one pass at temperature 1, ties to the forward side."""
    texts = (req.prefix, req.ends_with, req.contains)
    if not req.implied_contains:
        forced = tuple(vocab.encode(req.contains[::-1]))
        return Plan("backward", forced, True, *texts)
    prefix, ending = tuple(vocab.encode(req.prefix)), tuple(vocab.encode(req.ends_with[::-1]))
    if not ending:
        return Plan("forward", prefix, False, *texts)
    if backward is None:
        raise ValueError("ends_with needs a backward network")
    if prefix and start_logprob(forward, prefix, labels) <= start_logprob(backward, ending, labels):
        return Plan("forward", prefix, False, *texts)
    return Plan("backward", ending, False, *texts)


def stage_request(plan: Plan, req: GenerateRequest) -> GenerateRequest:
    """The controls of a plan's first stage. Growing a name, the backward network draws
    the left part with no minimum length (the forward stage that follows applies it)."""
    return req.model_copy(update={"min_length": 1}) if plan.grow else req


def grown(ids: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """The forward stage's prefixes (left part + substring) from the backward stage's."""
    return tuple(tuple(reversed(row)) for row in ids)


def rescore(
    model: WaveNet,
    vocab: Vocab,
    jobs: Sequence[tuple[Plan, tuple[int, ...] | None, list[list[int]]]],
) -> list[list[float]]:
    """The forward log-probabilities at temperature 1 (/score's figures) of the names that
    jobs of a backward network found, per job its plan, label ids and ids; all in one
    pass. Names their plan rejects get nan, and no work; a name found twice (under the
    same labels) is scored once: common names come up again and again."""
    rows: list[list[int]] = []
    labels: list[tuple[int, ...]] = []
    where: list[list[int]] = []  # per job, per name: its index in `rows`, or -1
    seen: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    for plan, ids_labels, ids in jobs:
        places = []
        for row in ids:
            name = row[::-1]
            if not plan.accepts(vocab.decode(name)):
                places.append(-1)
                continue
            key = (tuple(name), ids_labels or ())
            if key not in seen:
                seen[key] = len(rows)
                rows.append(name)
                labels.append(key[1])
            places.append(seen[key])
        where.append(places)
    conditional = bool(jobs) and jobs[0][1] is not None
    logprobs = logprobs_of_ids(model, rows, labels if conditional else None)
    return [[logprobs[i] if i >= 0 else math.nan for i in places] for places in where]

"""Labels from a name: the posterior of every label column of a conditional model.

Bayes' rule over the model: P(labels | name) is proportional to P(name | labels) P(labels),
with the prior from the training corpus (by name types or by births). A temperature tau
calibrates the model's confidence: the likelihood enters as P(name | labels) ** (1 / tau).

With few label sets (sex x decade: 28) every set of the joint prior is a hypothesis and a
column's posterior is the joint's marginal; with more, each column is inferred apart, the
other labels unknown. Either way every name is scored under every hypothesis, plus once
with all labels unknown (the name's own log-probability), in one batched forward per
chunk of names x hypotheses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from model.labels import LabelSpace, PriorKind
from model.scoring import char_logprobs, encode_names
from model.vocab import Vocab
from model.wavenet import WaveNet

MAX_JOINT = 64  # at most this many label sets: enumerate the joint
TEMPERATURES = tuple(2 ** (k / 8) for k in range(-24, 25))  # 1/8 .. 8, 2 ** (1/8) apart


@dataclass(frozen=True)
class ColumnPosterior:
    probs: dict[str, float]  # P(value | name) per value, summing to 1
    best: str  # the most likely value
    expected: float | None  # ordinal columns: sum of P(v) v (a decade's mean year: + 5)


@dataclass(frozen=True)
class NamePosterior:
    name: str
    columns: dict[str, ColumnPosterior]
    logprob: float  # log P(name) with every label unknown (natural log)


@dataclass(frozen=True)
class Hypotheses:
    """The label sets every name is scored under, and their prior."""

    sets: Tensor  # (K, L) label ids
    log_prior: Tensor  # (K,)
    joint: bool  # every column at once; else one column at a time, the others unknown
    sizes: tuple[int, ...]  # values per column

    @classmethod
    def of(cls, space: LabelSpace, prior: PriorKind, max_joint: int = MAX_JOINT) -> Hypotheses:
        joint = space.joint(prior) if space.counts(prior) else []
        enumerate_joint = 0 < len(joint) <= max_joint
        if enumerate_joint:
            sets = [ids for ids, _ in joint]
            probs = [p for _, p in joint]
        else:
            sets, probs = [], []
            for j, column in enumerate(space.columns):
                for v, p in enumerate(space.marginal(column.name, prior), start=1):
                    sets.append([v if i == j else 0 for i in range(len(space.columns))])
                    probs.append(p)
        log_prior = torch.tensor([math.log(p) if p > 0 else -math.inf for p in probs])
        sizes = tuple(len(c.values) for c in space.columns)
        return cls(torch.tensor(sets, dtype=torch.long), log_prior, enumerate_joint, sizes)

    def posterior(self, logp: Tensor, temperature: float = 1.0) -> list[Tensor]:
        """Per column P(value | name) (N, values) from logp (N, K), log P(name | set)."""
        scores = logp.double() / temperature + self.log_prior.to(logp.device).double()
        w = torch.softmax(scores, dim=-1) if self.joint else scores
        out = []
        for j, n in enumerate(self.sizes):
            ids = self.sets[:, j].to(logp.device)
            if self.joint:  # the joint's marginal
                probs = w.new_zeros(len(w), n).index_add_(1, ids - 1, w)
            else:  # this column's hypotheses alone, in value order
                rows = (ids != 0).nonzero().squeeze(-1)
                probs = torch.softmax(scores[:, rows], dim=-1)
            out.append(probs.float())
        return out


@torch.inference_mode()
def label_logprobs(
    model: WaveNet, vocab: Vocab, names: Sequence[str], sets: Tensor, chunk: int = 4096
) -> Tensor:
    """log P(name | labels) (N, K) of every name under every label set (K, L): each
    forward scores a chunk of names under all K sets (chunk rows in all). Names are taken
    in order of length, so a chunk pads little. Raises UnknownCharacterError."""
    if model.training:
        raise ValueError("label_logprobs needs the model in eval mode")
    device = next(model.parameters()).device
    K = sets.shape[0]
    sets = sets.to(device)
    out = torch.zeros(len(names), K, device=device)
    order = sorted(range(len(names)), key=lambda i: len(names[i]))
    per_chunk = max(1, chunk // K)
    for start in range(0, len(order), per_chunk):
        part = order[start : start + per_chunk]
        x, y, _ = (t.to(device) for t in encode_names(vocab, [names[i] for i in part]))
        x, y = x.repeat_interleave(K, dim=0), y.repeat_interleave(K, dim=0)  # (n K, T)
        logits, _ = model(x, labels=sets.repeat(len(part), 1))  # (n K, T, V)
        out[torch.tensor(part, device=device)] = char_logprobs(logits, y).sum(-1).view(-1, K)
    return out


def scored_sets(
    space: LabelSpace, prior: PriorKind | None = None, max_joint: int = MAX_JOINT
) -> tuple[Hypotheses, Tensor]:
    """The hypotheses of `space` (its calibrated prior kind by default), and the label
    sets (K + 1, L) every name is scored under: each hypothesis's, then all unknown (the
    name's own log-probability)."""
    hyp = Hypotheses.of(space, prior or space.prior, max_joint)
    unknown = torch.zeros(1, len(space.columns), dtype=torch.long)
    return hyp, torch.cat([hyp.sets, unknown])


def posteriors(
    space: LabelSpace,
    hyp: Hypotheses,
    names: Sequence[str],
    logp: Tensor,
    temperature: float | None = None,
) -> list[NamePosterior]:
    """Each name's posterior from logp (N, K + 1), its log P(name | set) under the sets
    of `scored_sets`; temperature defaults to the space's calibration."""
    tau = space.temperature if temperature is None else temperature
    if not tau > 0:
        raise ValueError(f"temperature must be > 0, got {tau}")
    columns = [p.tolist() for p in hyp.posterior(logp[:, :-1], tau)]
    out = []
    for i, name in enumerate(names):
        found = {}
        for column, probs in zip(space.columns, columns, strict=True):
            row = probs[i]
            expected = None
            if column.ordinal:
                expected = sum(p * v for p, v in zip(row, column.numbers(), strict=True))
            best = column.values[max(range(len(row)), key=row.__getitem__)]
            found[column.name] = ColumnPosterior(
                dict(zip(column.values, row, strict=True)), best, expected
            )
        out.append(NamePosterior(name, found, float(logp[i, -1])))
    return out


def infer_labels(
    model: WaveNet,
    vocab: Vocab,
    space: LabelSpace,
    names: Sequence[str],
    *,
    temperature: float | None = None,
    prior: PriorKind | None = None,
    max_joint: int = MAX_JOINT,
    chunk: int = 4096,
) -> list[NamePosterior]:
    """The posterior of every label column for each name, in input order, in one
    process (the service runs the same scoring through its scheduler). temperature and
    prior default to the space's calibration. Raises UnknownCharacterError."""
    hyp, sets = scored_sets(space, prior, max_joint)
    logp = label_logprobs(model, vocab, names, sets, chunk)
    return posteriors(space, hyp, names, logp, temperature)


def fit_temperature(
    hyp: Hypotheses,
    logp: Tensor,
    truth: Mapping[int, Tensor],
    grid: Sequence[float] = TEMPERATURES,
) -> float:
    """The temperature of `grid` that minimises the summed log loss of the posterior of
    the columns in `truth` (column index: true ids (N,), 1-based) on held-out names,
    logp (N, K) their label_logprobs under hyp.sets."""

    def loss(tau: float) -> float:
        columns = hyp.posterior(logp, tau)
        total = 0.0
        for j, ids in truth.items():
            p = columns[j].gather(1, (ids.to(logp.device) - 1)[:, None]).clamp_min(1e-12)
            total -= float(p.log().mean())
        return total

    return min(grid, key=loss)

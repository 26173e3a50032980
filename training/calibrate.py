"""Calibrating a conditional model's posteriors on the validation names.

Bayes over the model (model/posterior.py) gives P(labels | name) proportional to
P(name | labels) ** (1 / tau) * prior. The model's likelihoods are sharper or flatter than
they should be, and of the two priors the corpus offers (label sets counted by name
types or by births) either may suit held-out names better. Both are chosen here on the
validation names, never seen in training: for each prior the temperature that minimises
the log loss of every column's true value (a name's majority value by count), then the
prior with the lower loss. The result is stored in the checkpoint's label space, which
the service reads.

    python -m training.calibrate CHECKPOINT   # (re)calibrate a trained checkpoint
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from model import Vocab
from model.checkpoint import load_checkpoint, save_checkpoint
from model.labels import LabelSpace, PriorKind
from model.posterior import Hypotheses, fit_temperature, label_logprobs
from model.wavenet import WaveNet
from training.config import oriented
from training.corpus import Corpus, Row, load_corpus
from training.data import split_names
from training.labelled import split_rows


def majority_labels(rows: Sequence[Row], space: LabelSpace) -> tuple[list[str], Tensor]:
    """The distinct names of `rows` and, per column, each name's value with the largest
    summed count: (N, columns) ids, 1-based."""
    by_name: dict[str, list[Counter[str]]] = defaultdict(lambda: [Counter() for _ in space.columns])
    for name, values, count in rows:
        for counter, value in zip(by_name[name], values, strict=True):
            counter[value] += count
    names = list(by_name)
    majority = [[n.most_common(1)[0][0] for n in counters] for counters in by_name.values()]
    ids = [space.encode(dict(zip(space.names, values, strict=True))) for values in majority]
    return names, torch.tensor(ids, dtype=torch.long).view(len(names), len(space.columns))


def log_loss(hyp: Hypotheses, logp: Tensor, truth: Tensor, temperature: float) -> list[float]:
    """Per column the mean log loss of the true ids (N, columns) under the posterior."""
    out = []
    for j, probs in enumerate(hyp.posterior(logp, temperature)):
        p = probs.gather(1, (truth[:, j].to(probs.device) - 1)[:, None]).clamp_min(1e-12)
        out.append(-float(p.log().mean()))
    return out


def calibrate(
    model: WaveNet, vocab: Vocab, space: LabelSpace, rows: Sequence[Row]
) -> tuple[LabelSpace, dict[str, Any]]:
    """The label space with the temperature and prior that fit the names of `rows` (the
    validation part) best, and a report of both priors' fits."""
    names, truth = majority_labels(rows, space)
    report: dict[str, Any] = {"names": len(names), "priors": {}}
    scored: tuple[Tensor, Tensor] | None = None  # (sets, logp) of the last prior
    priors: tuple[PriorKind, ...] = ("types", "births")
    for prior in priors:
        hyp = Hypotheses.of(space, prior)
        if scored is None or not torch.equal(scored[0], hyp.sets):
            scored = (hyp.sets, label_logprobs(model, vocab, names, hyp.sets))
        logp = scored[1]
        tau = fit_temperature(hyp, logp, {j: truth[:, j] for j in range(truth.shape[1])})
        losses = log_loss(hyp, logp, truth, tau)
        report["priors"][prior] = {
            "temperature": tau,
            "log_loss": dict(zip(space.names, losses, strict=True)),
            "uncalibrated_log_loss": dict(
                zip(space.names, log_loss(hyp, logp, truth, 1.0), strict=True)
            ),
        }
    best = min(priors, key=lambda p: sum(report["priors"][p]["log_loss"].values()))
    tau = report["priors"][best]["temperature"]
    report.update(prior=best, temperature=tau)
    return replace(space, temperature=tau, prior=best), report


def validation_rows(corpus: Corpus, split_seed: int) -> list[Row]:
    """The validation part's rows of a labelled corpus, split as training splits it."""
    if corpus.labels is None:
        raise ValueError("not a labelled corpus")
    return split_rows(corpus.labels, split_names(corpus.names, seed=split_seed))[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__)
    parser.add_argument("checkpoint", help="a conditional model's checkpoint directory")
    args = parser.parse_args(argv)
    checkpoint = load_checkpoint(args.checkpoint)
    if checkpoint.labels is None or not isinstance(checkpoint.model, WaveNet):
        print(f"error: {args.checkpoint} has no label columns", file=sys.stderr)
        return 2
    config = checkpoint.meta["training"]["config"]
    corpus = load_corpus(config["corpus"], lowercase=config["lowercase"])
    rows = validation_rows(corpus, config["split_seed"])
    rows = [(oriented(n, checkpoint.direction), v, c) for n, v, c in rows]  # as it reads them
    labels, report = calibrate(checkpoint.model, checkpoint.vocab, checkpoint.labels, rows)
    meta = {**checkpoint.meta, "calibration": report}
    save_checkpoint(
        checkpoint.path,
        checkpoint.model,
        checkpoint.vocab,
        meta=meta,
        corpus_names=checkpoint.corpus_names,
        labels=labels,
    )
    print(f"prior {report['prior']}, temperature {report['temperature']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

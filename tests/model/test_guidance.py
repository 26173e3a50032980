"""Classifier-free guidance: a guided row samples from u + w (c - u), c its logits under
the labels and u its twin's with the labels unknown; the twin follows it character for
character, in any batch, parked or not; the logprob returned stays the model's under the
labels at temperature 1; and on the shipped checkpoint guidance makes names carry the
labels asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from model import WaveNet
from model.engine import Engine
from model.incremental import IncrementalWaveNet
from model.jobs import SampleJob
from model.posterior import infer_labels
from model.request import GenerateRequest
from model.sampling import Batch, sample_jobs
from tests.model.test_conditioning import conditional

REPO = Path(__file__).resolve().parents[2]
LABELS = (1, 3)


def job(
    n: int, seed: int, labels: tuple[int, ...] | None = LABELS, **controls: object
) -> SampleJob:
    req = GenerateRequest(**controls)  # type: ignore[arg-type]
    return SampleJob(n, req, (), torch.Generator().manual_seed(seed), labels)


def run_mixed(net: IncrementalWaveNet, jobs: list[SampleJob], park: bool) -> list[list[list[int]]]:
    """The jobs' names, run in one batch that joins them at different steps (and parks
    the first for a while)."""
    batch = Batch(net)
    index = {batch.add(jobs[0]): 0}
    results: dict[int, list[list[int]]] = {}

    def step() -> None:
        for handle, names, _ in batch.step():
            results[index.pop(handle)] = names

    step()
    for i, j in enumerate(jobs[1:], start=1):
        index[batch.add(j)] = i
        step()
    if park:
        first = next(h for h, i in index.items() if i == 0)
        batch.park([first])
        step()
        step()
        batch.resume(first)
    while len(batch):
        step()
    return [results[i] for i in range(len(jobs))]


@pytest.mark.parametrize("park", [False, True])
def test_guidance_zero_samples_the_names_of_unknown_labels(park: bool) -> None:
    """At w = 0 a row samples its twin's distribution: a guided job's names are those of
    the same job with the labels unknown, which holds only if every twin is paired with
    its own row and steps in its own state."""
    net = IncrementalWaveNet(conditional({"kernel_sizes": (2, 2, 2, 2)}))
    guided = [job(30, 1, guidance=0), job(9, 2, guidance=0, temperature=0.7), job(5, 3)]
    plain = [job(30, 1, None), job(9, 2, None, temperature=0.7)]
    mixed = run_mixed(net, guided, park)
    for names, reference in zip(mixed, [sample_jobs(net, [j])[0][0] for j in plain], strict=False):
        assert names == reference
    assert mixed[2] == sample_jobs(net, [job(5, 3)])[0][0]  # guided at 3, alone


def guided_by_full_forward(model: WaveNet, w: float, seed: int, steps: int) -> list[int]:
    """One name drawn as the sampler draws it (a uniform number per step, the inverse of
    the cumulative distribution), from full forward passes under and without the labels."""
    g = torch.Generator().manual_seed(seed)
    idx = [0]
    with torch.no_grad():
        for _ in range(steps):
            x = torch.tensor([idx])
            c = model(x, labels=torch.tensor([LABELS]))[0][0, -1]
            u = model(x, labels=torch.zeros(1, 2, dtype=torch.long))[0][0, -1]
            guided = u + w * (c - u)
            if len(idx) == 1:  # no end before min_length (1)
                guided[0] = float("-inf")
            cdf = F.softmax(guided, dim=-1).cumsum(-1)
            draw = torch.rand(1, generator=g)
            nxt = int(torch.searchsorted(cdf, draw * cdf[-1], right=True).clamp(max=26))
            if nxt == 0:
                break
            idx.append(nxt)
    return idx[1:]


@pytest.mark.parametrize("w", [0.5, 2.0, 3.0])
def test_a_guided_row_samples_from_the_guided_logits(w: float) -> None:
    model = conditional({"kernel_sizes": (2, 2, 2)})
    net = IncrementalWaveNet(model)
    for seed in range(6):
        (names, logprobs), *_ = sample_jobs(net, [job(1, seed, guidance=w, max_length=12)])
        assert names[0] == guided_by_full_forward(model, w, seed, 12)
        # the logprob is the model's under the labels, unguided, as /score gives it
        x = torch.tensor([[0, *names[0], 0]])
        with torch.no_grad():
            logits = model(x[:, :-1], labels=torch.tensor([LABELS]))[0][0]
        expected = F.log_softmax(logits, -1).gather(1, x[0, 1:, None]).sum()
        assert logprobs[0] == pytest.approx(float(expected), abs=1e-4)


def test_guidance_one_has_no_twins_and_no_labels_no_guidance() -> None:
    net = IncrementalWaveNet(conditional())
    batch = Batch(net)
    batch.add(job(4, 1, guidance=1.0))
    batch.add(job(3, 2, None))
    batch.add(job(2, 3, (0, 0)))  # labels all unknown: nothing to guide towards
    assert len(batch.rows) == 9
    batch.add(job(5, 4))
    assert len(batch.rows) == 19 and len(batch) == 19


def test_guidance_makes_the_shipped_checkpoints_names_carry_their_sex() -> None:
    engine = Engine.load(REPO / "checkpoints" / "default", "cpu")
    space = engine.checkpoint.labels
    assert space is not None
    shares = {}
    for w in (1.0, 3.0):
        agree = 0
        for seed, sex in enumerate(("F", "M")):
            req = GenerateRequest(n=200, seed=seed, labels={"sex": sex}, guidance=w)
            names = [g.name for g in engine.generate(req).names]
            posts = infer_labels(engine.model, engine.vocab, space, names)
            agree += sum(p.columns["sex"].best == sex for p in posts)
        shares[w] = agree / 400
    assert shares[3.0] >= 0.95 and shares[3.0] > shares[1.0] + 0.05, shares


def test_guidance_is_checked() -> None:
    for bad in (-0.5, 10.5, float("nan")):
        with pytest.raises(ValueError, match="guidance"):
            GenerateRequest(guidance=bad)

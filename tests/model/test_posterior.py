"""Labels from names by Bayes' rule over a conditional model."""

from __future__ import annotations

import random

import pytest
import torch

from model import Vocab, WaveNet, WaveNetConfig
from model.labels import LabelSpace
from model.posterior import Hypotheses, fit_temperature, infer_labels, label_logprobs
from model.scoring import encode_names, score_names
from tests.model.test_conditioning import conditional

VOCAB = Vocab.from_names(["abcdefghijklmnopqrstuvwxyz"])
SEX = {"F": "a", "M": "o"}  # the sex decides the last letter
DECADE = {"1900": "k", "2000": "z"}  # the decade the first


def synthetic(n: int, seed: int) -> list[tuple[str, str, str]]:
    """(name, sex, decade): a first letter by decade, a random middle, a last by sex."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        sex, decade = rng.choice("FM"), rng.choice(["1900", "2000"])
        middle = "".join(rng.choice("eilnrstu") for _ in range(rng.randint(1, 4)))
        rows.append((DECADE[decade] + middle + SEX[sex], sex, decade))
    return rows


def space_of(rows: list[tuple[str, str, str]]) -> LabelSpace:
    return LabelSpace.build(["sex", "decade"], [((s, d), 1.0) for _, s, d in rows])


@pytest.fixture(scope="module")
def trained() -> tuple[WaveNet, LabelSpace]:
    """A tiny conditional model trained a few hundred steps, labels dropped 20% of the
    time (so it also scores with labels unknown)."""
    rows = synthetic(2000, seed=0)
    space = space_of(rows)
    x, y, _ = encode_names(VOCAB, [name for name, _, _ in rows])
    labels = torch.tensor([space.encode({"sex": s, "decade": d}) for _, s, d in rows])
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(n_embd=8, n_hidden=32, label_sizes=space.sizes))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steps this small only lose by sharing out their work
    try:
        for _ in range(300):
            batch = torch.randint(0, len(rows), (64,))
            dropped = labels[batch].masked_fill(torch.rand(64, 2) < 0.2, 0)
            _, loss = model(x[batch], y[batch], labels=dropped)
            assert loss is not None
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval(), space


def test_the_posterior_picks_the_labels_that_made_the_name(
    trained: tuple[WaveNet, LabelSpace],
) -> None:
    model, space = trained
    held_out = synthetic(60, seed=1)
    names = [name for name, _, _ in held_out]
    for prior in ("types", "births"):
        found = infer_labels(model, VOCAB, space, names, prior=prior)
        assert [f.name for f in found] == names  # input order, though taken by length
        for f, (_, sex, decade) in zip(found, held_out, strict=True):
            assert f.columns["sex"].best == sex and f.columns["sex"].probs[sex] > 0.9
            assert f.columns["decade"].best == decade
            expected = f.columns["decade"].expected
            assert expected is not None and abs(expected - int(decade)) < 10
            assert f.columns["sex"].expected is None  # not ordinal


def test_the_name_logprob_is_the_score_with_labels_unknown(
    trained: tuple[WaveNet, LabelSpace],
) -> None:
    model, space = trained
    names = ["kelia", "zo", "kuuuuuo", "qqq"]
    found = infer_labels(model, VOCAB, space, names)
    scores = score_names(model, VOCAB, names)
    for f, s in zip(found, scores, strict=True):
        assert f.logprob == pytest.approx(s.logprob, abs=1e-4)
    assert found[3].logprob < found[0].logprob - 5  # an unlike name is told apart


def test_temperature_flattens_and_sharpens(trained: tuple[WaveNet, LabelSpace]) -> None:
    model, space = trained
    names = ["kelia", "zeno"]
    cold, plain, hot = (
        infer_labels(model, VOCAB, space, names, temperature=t) for t in (0.5, 1.0, 4.0)
    )
    for c, p, h in zip(cold, plain, hot, strict=True):
        tops = [max(r.columns["sex"].probs.values()) for r in (c, p, h)]
        assert tops[0] >= tops[1] > tops[2]


def test_fit_temperature_lowers_the_held_out_log_loss(
    trained: tuple[WaveNet, LabelSpace],
) -> None:
    model, space = trained
    held_out = synthetic(100, seed=2)
    hyp = Hypotheses.of(space, "types")
    assert hyp.joint and hyp.sets.shape == (4, 2)
    logp = label_logprobs(model, VOCAB, [n for n, _, _ in held_out], hyp.sets)
    truth = {0: torch.tensor([space.encode({"sex": s})[0] for _, s, _ in held_out])}
    tau = fit_temperature(hyp, logp, truth)

    def loss(t: float) -> float:
        p = hyp.posterior(logp, t)[0].gather(1, truth[0][:, None] - 1)
        return float(-p.log().mean())

    assert loss(tau) <= loss(1.0) and loss(tau) <= loss(8.0)


@pytest.mark.parametrize("max_joint", [64, 0])  # the joint, or each column apart
def test_posteriors_sum_to_one_per_column(max_joint: int) -> None:
    model = conditional()  # label sizes (3, 5): two sexes, four decades
    rows = [("a", s, d) for s in "FM" for d in ("1950", "1960", "1970", "1980")]
    space = LabelSpace.build(["sex", "decade"], [((s, d), 1.0 + len(d)) for _, s, d in rows])
    hyp = Hypotheses.of(space, "types", max_joint)
    assert hyp.joint == (max_joint > 0) and len(hyp.sets) == (8 if max_joint else 6)
    names = ["ab", "zzzzzzzzzzzzzzzz", "q", "emma"]
    for f in infer_labels(model, VOCAB, space, names, max_joint=max_joint, chunk=7):
        for name, column in f.columns.items():
            assert list(column.probs) == list(space.column(name).values)
            assert sum(column.probs.values()) == pytest.approx(1.0, abs=1e-5)
            assert column.best == max(column.probs, key=column.probs.__getitem__)


def test_label_logprobs_are_scores_under_those_labels() -> None:
    model = conditional()
    names = ["emma", "x", "olivia", "li"]
    sets = torch.tensor([[0, 0], [1, 3], [2, 4], [2, 0]])
    logp = label_logprobs(model, VOCAB, names, sets, chunk=5)  # chunks of one name
    for k, labels in enumerate(sets):
        scores = score_names(model, VOCAB, names, labels=labels.expand(len(names), 2))
        assert logp[:, k].tolist() == pytest.approx([s.logprob for s in scores], abs=1e-4)
    with pytest.raises(ValueError, match="labels must be"):
        score_names(model, VOCAB, names, labels=sets[:2])

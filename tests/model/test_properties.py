"""Properties of the sampler and scorer, checked on many generated cases (hypothesis)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from model.engine import GenerateRequest
from model.scoring import score_names
from tests.model.test_sampling import VOCAB, engine_with_corpus

ENGINE = engine_with_corpus({"anna", "bob"})
LETTERS = "abcdefghijklmnopqrstuvwxyz"
names = st.text(alphabet=LETTERS, min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=8))
def test_scores_are_finite_and_negative(batch: list[str]) -> None:
    for scored in ENGINE.score(batch):
        s = scored.score
        assert math.isfinite(s.logprob) and s.logprob < 0
        assert len(s.char_probs) == len(s.name) + 1
        assert all(0 < p <= 1 for p in s.char_probs)
        assert s.perplexity >= 1


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    temperature=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    top_k=st.none() | st.integers(1, 27),
    top_p=st.none() | st.floats(0.05, 1.0),
    prefix=st.text(alphabet=LETTERS, max_size=3),
    lengths=st.tuples(st.integers(1, 8), st.integers(0, 8)),
    unique=st.booleans(),
    exclude=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_generated_names_satisfy_every_constraint(
    n: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    prefix: str,
    lengths: tuple[int, int],
    unique: bool,
    exclude: bool,
    seed: int,
) -> None:
    min_length = max(lengths[0], 1)
    max_length = max(min_length + lengths[1], len(prefix), 1)
    req = GenerateRequest(
        n=n,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        prefix=prefix,
        min_length=min_length,
        max_length=max_length,
        unique=unique,
        exclude_existing=exclude,
    )
    result = ENGINE.generate(req)
    got = [g.name for g in result.names]
    assert len(got) <= n and (result.complete == (len(got) == n))
    for g in result.names:
        assert g.name.startswith(prefix)
        assert max(min_length, len(prefix)) <= len(g.name) <= max_length
        assert math.isfinite(g.logprob) and g.logprob < 0
    if unique:
        assert len(set(got)) == len(got)
    if exclude:
        assert not set(got) & ENGINE.corpus_names
    scores = ENGINE.score(got) if got else []
    for g, s in zip(result.names, scores, strict=True):
        assert abs(g.logprob - s.score.logprob) < 1e-4


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=LETTERS, max_size=12))
def test_prefix_continuations_sum_to_one(prefix: str) -> None:
    """P(prefix + c) / P(prefix ...) over every c, the end included, sums to 1: the scorer's
    per-name probabilities of all one-character continuations (and of ending) add up."""
    model = ENGINE.model
    ids = torch.tensor([[0, *VOCAB.encode(prefix)]])
    with torch.no_grad():
        logits, _ = model(ids)
    next_probs = F.softmax(logits[0, -1], dim=-1)
    assert abs(float(next_probs.sum()) - 1.0) < 1e-5
    # the same figures through the scorer: ending now, and each continuation's last step
    scored = score_names(model, VOCAB, [prefix + c for c in LETTERS] + ([prefix] if prefix else []))
    total = sum(s.char_probs[len(prefix)] for s in scored[: len(LETTERS)])
    end = scored[-1].char_probs[-1] if prefix else float(next_probs[0])
    assert abs(total + end - 1.0) < 1e-4

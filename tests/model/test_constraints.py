"""ends_with, prefix + ends_with and contains, on an engine with a forward and a backward
network (random ones: the properties hold for any pair), with and without labels."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from model import WaveNet, WaveNetConfig
from model.checkpoint import Checkpoint
from model.constraints import plan_for, start_logprob
from model.engine import Engine
from model.labels import LabelSpace
from model.request import GenerateRequest
from tests.model.test_sampling import VOCAB, trained_like

LETTERS = "abcdefghijklmnopqrstuvwxyz"
META = {"files": {"model": {"sha256": "0" * 64}}}
SPACE = LabelSpace.build(["sex", "decade"], [(("F", "1950"), 3.0), (("M", "2000"), 1.0)])


def both(corpus: frozenset[str] = frozenset()) -> Engine:
    forward, backward = trained_like(seed=0), trained_like(seed=1)
    return Engine(Checkpoint(forward, VOCAB, META, corpus, None, None, backward))  # type: ignore[arg-type]


def conditional(seed: int) -> WaveNet:
    torch.manual_seed(seed)
    model = WaveNet(WaveNetConfig(n_embd=8, n_hidden=16, label_sizes=SPACE.sizes)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.3)  # the label projections start at zero
    return model


ENGINE = both(frozenset({"anna", "bob"}))
LABELLED = Engine(
    Checkpoint(conditional(0), VOCAB, META, frozenset(), None, SPACE, conditional(1))  # type: ignore[arg-type]
)
texts = st.text(alphabet="abeilnor", max_size=3)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 20),
    prefix=texts,
    ends_with=texts,
    contains=texts,
    temperature=st.sampled_from([0.0, 0.7, 1.0, 1.5]),
    top_k=st.none() | st.integers(1, 27),
    max_extra=st.integers(0, 8),
    unique=st.booleans(),
    labelled=st.booleans(),
    labels=st.sampled_from([None, {"sex": "F"}, {"sex": "M", "decade": 1950}]),
    seed=st.integers(0, 2**31),
)
def test_every_name_meets_every_text_constraint(
    n: int,
    prefix: str,
    ends_with: str,
    contains: str,
    temperature: float,
    top_k: int | None,
    max_extra: int,
    unique: bool,
    labelled: bool,
    labels: dict[str, str | int] | None,
    seed: int,
) -> None:
    engine = LABELLED if labelled else ENGINE
    shortest = max(len(prefix) + len(ends_with), len(contains), 1)
    req = GenerateRequest(
        n=n,
        seed=seed,
        prefix=prefix,
        ends_with=ends_with,
        contains=contains,
        temperature=temperature,
        top_k=top_k,
        max_length=shortest + max_extra,
        unique=unique,
        labels=labels if labelled else None,
    )
    result = engine.generate(req)
    assert result.complete == (len(result.names) == n)
    assert result.sampled <= n * engine.budget_factor + 100
    for g in result.names:
        name = g.name
        assert name.startswith(prefix) and name.endswith(ends_with) and contains in name
        assert 1 <= len(name) <= req.max_length
    if unique:
        assert len({g.name for g in result.names}) == len(result.names)
    got = [g.name for g in result.names]
    scores = engine.score(got, req.labels) if got else []
    for g, s in zip(result.names, scores, strict=True):
        assert g.logprob == pytest.approx(s.score.logprob, abs=1e-4)  # /score's figure


def test_an_ending_is_sampled_from_the_backward_network() -> None:
    """The character before the ending follows the backward network's distribution."""
    engine, n = both(), 10_000
    result = engine.generate(GenerateRequest(n=n, seed=0, ends_with="a", min_length=2))
    assert result.complete and result.sampled == n  # no rejection
    before = torch.tensor([VOCAB.stoi[g.name[-2]] for g in result.names])
    counts = torch.bincount(before, minlength=27).float()
    assert engine.backward is not None
    with torch.no_grad():
        logits, _ = engine.backward(torch.tensor([[0, VOCAB.stoi["a"]]]))
    logits[0, 1, 0] = float("-inf")  # min_length 2: no end yet
    expected = F.softmax(logits[0, 1], dim=-1) * n
    std = (expected * (1 - expected / n)).sqrt() + 1e-9
    assert ((counts - expected).abs() <= 5 * std + 1).all()


def test_the_rarer_side_is_fixed() -> None:
    engine = both()
    assert engine.backward is not None
    for prefix, ending in [("q", "a"), ("a", "q"), ("ab", "zz"), ("zx", "b")]:
        plan = plan_for(
            GenerateRequest(prefix=prefix, ends_with=ending),
            VOCAB,
            engine.model,
            engine.backward,
            None,
        )
        p_prefix = start_logprob(engine.model, VOCAB.encode(prefix), None)
        p_ending = start_logprob(engine.backward, VOCAB.encode(ending[::-1]), None)
        assert plan.direction == ("forward" if p_prefix <= p_ending else "backward")
        assert math.isfinite(p_prefix) and math.isfinite(p_ending)


def test_seeded_requests_repeat_alone_or_merged() -> None:
    reqs = [
        GenerateRequest(n=20, seed=1, ends_with="ne"),
        GenerateRequest(n=40, seed=2, prefix="a", ends_with="a", max_length=7),
        GenerateRequest(n=17, seed=3, contains="li", unique=True),
        GenerateRequest(n=5, seed=4, contains="b", prefix="a", temperature=0.8),
        GenerateRequest(n=30, seed=5),
        GenerateRequest(n=3, seed=6, prefix="el", contains="l", top_k=5),
    ]
    merged = ENGINE.generate_many(reqs)
    for req, together in zip(reqs, merged, strict=True):
        for alone in (ENGINE.generate(req), ENGINE.generate(req)):
            assert [g.name for g in together.names] == [g.name for g in alone.names], req
            assert together.sampled == alone.sampled and together.stopped == alone.stopped
            for a, b in zip(together.names, alone.names, strict=True):
                assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_rejection_stops_at_the_budget_and_says_so() -> None:
    engine = both()
    # this pair shares no name this short often: the budget runs out first
    result = engine.generate(
        GenerateRequest(n=500, seed=0, prefix="zq", ends_with="xj", max_length=5)
    )
    assert not result.complete and result.stopped == "budget"
    assert result.sampled >= 500 * engine.budget_factor + 100 - 16


def test_without_a_backward_network_endings_are_refused_by_field() -> None:
    engine = Engine(Checkpoint(trained_like(), VOCAB, META, frozenset(), None))  # type: ignore[arg-type]
    req = GenerateRequest(ends_with="a", contains="b")
    fields = [field for field, _ in engine.request_problems(req)]
    assert fields == ["ends_with", "contains"]
    with pytest.raises(ValueError, match="ends_with needs a checkpoint with a backward network"):
        engine.generate(req)
    assert engine.request_problems(GenerateRequest(ends_with="é")) == [
        ("ends_with", "character 'é' is not in the model's vocabulary"),
        ("ends_with", "this checkpoint has no backward network"),
    ]


def test_texts_are_checked_against_max_length() -> None:
    from pydantic import ValidationError

    for fields, field in [
        ({"ends_with": "abcdef", "max_length": 5}, "ends_with"),
        ({"contains": "abcdef", "max_length": 5}, "contains"),
        ({"prefix": "abc", "ends_with": "xyz", "max_length": 5}, "ends_with"),
    ]:
        with pytest.raises(ValidationError) as caught:
            GenerateRequest(**fields)  # type: ignore[arg-type]
        assert caught.value.errors()[0]["ctx"]["field"] == field
    # an overlap makes room: "abc" + "cde" fits in 5 ("abcde")
    assert GenerateRequest(prefix="abc", ends_with="cde", max_length=5).ends_with == "cde"

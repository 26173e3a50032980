"""The one generation request: its defaults, its normalising and its checks, and why a
filtered request came back short."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model.request import GenerateRequest
from tests.model.test_sampling import engine_with_corpus


def test_defaults_are_the_documented_ones() -> None:
    req = GenerateRequest()
    assert (req.n, req.temperature, req.top_k, req.top_p, req.seed) == (10, 1.0, None, None, None)
    assert (req.prefix, req.min_length, req.max_length) == ("", 1, 16)
    assert not req.exclude_existing and not req.unique and not req.filtered


def test_prefix_is_trimmed_and_lowercased_before_its_length_is_checked() -> None:
    assert GenerateRequest(prefix="  MaRy ").prefix == "mary"
    assert GenerateRequest(prefix=" abcd ", max_length=4).prefix == "abcd"


def test_a_request_is_immutable_and_hashable() -> None:
    req = GenerateRequest(n=3, seed=1)
    with pytest.raises(ValidationError):
        req.n = 4  # type: ignore[misc]
    assert hash(req) == hash(GenerateRequest(n=3, seed=1))


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"min_length": 9, "max_length": 4},
            "min_length",
            "min_length (9) is more than max_length (4)",
        ),
        ({"prefix": "abcdefg", "max_length": 5}, "prefix", "more than max_length (5)"),
        ({"prefix": "a" * 17}, "prefix", "more than max_length (16)"),
    ],
)
def test_inconsistent_lengths_name_their_field(fields: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GenerateRequest(**fields)
    (error,) = caught.value.errors()
    assert error["ctx"]["field"] == field and message in error["msg"]


@pytest.mark.parametrize(
    "fields",
    [{"n": 0}, {"temperature": -1}, {"top_k": 0}, {"top_p": 0}, {"seed": -1}, {"typo": 1}],
)
def test_out_of_range_controls_are_refused(fields: dict) -> None:
    with pytest.raises(ValidationError):
        GenerateRequest(**fields)


def test_a_complete_request_has_no_stop_reason() -> None:
    result = engine_with_corpus(set()).generate(GenerateRequest(n=20, seed=0, unique=True))
    assert result.complete and result.stopped is None


def test_a_spent_budget_says_budget() -> None:
    engine = engine_with_corpus(set())
    engine.budget_factor = 0  # a budget of 100 samples for any n
    result = engine.generate(GenerateRequest(n=300, seed=0, unique=True))
    assert not result.complete and result.sampled == 100 and result.stopped == "budget"


def test_filters_that_find_nothing_new_say_no_new_names() -> None:
    engine = engine_with_corpus(set())
    result = engine.generate(GenerateRequest(n=100, seed=0, max_length=1, unique=True))
    assert not result.complete and result.stopped == "no_new_names"
    assert result.sampled < 100 * engine.budget_factor + 100
    greedy = engine.generate(GenerateRequest(n=5, temperature=0, unique=True))
    assert len(greedy.names) == 1 and greedy.stopped == "no_new_names"

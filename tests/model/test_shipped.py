"""The checkpoint shipped until labels came (checkpoints/babynames-2017, unlabelled, one
direction) gives the outputs pinned before the reshape (issue 16).

tests/fixtures/shipped_outputs.json was written by the code of commit 780ea5d: the same
requests must still give the same names, and the same log-probabilities to 1e-4. (Jobs
of one request are 64 rows since; every pinned request fits in one.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model.engine import Engine, GenerateRequest
from tests.conftest import REPO

PINNED: dict[str, Any] = json.loads(
    (REPO / "tests" / "fixtures" / "shipped_outputs.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(REPO / "checkpoints" / "babynames-2017", device="cpu")


def test_the_weights_are_the_pinned_ones(engine: Engine) -> None:
    assert engine.checkpoint.fingerprint == PINNED["fingerprint"]


@pytest.mark.parametrize("case", PINNED["generate"], ids=lambda c: json.dumps(c["request"]))
def test_generate_gives_the_pinned_names(engine: Engine, case: dict[str, Any]) -> None:
    result = engine.generate(GenerateRequest(**case["request"]))
    assert [g.name for g in result.names] == case["names"]
    assert [g.logprob for g in result.names] == pytest.approx(case["logprobs"], abs=1e-4)
    assert result.sampled == case["sampled"]


def test_scores_are_the_pinned_ones(engine: Engine) -> None:
    names = [s["name"] for s in PINNED["score"]]
    scored = engine.score(names)
    assert [s.score.name for s in scored] == names
    expected = [s["logprob"] for s in PINNED["score"]]
    assert [s.score.logprob for s in scored] == pytest.approx(expected, abs=1e-4)

"""ends_with and contains over HTTP, on a tiny checkpoint with both networks (labelled):
every name meets its constraints and carries /score's logprob, seeded requests repeat
alone or together, a checkpoint with one network refuses them by field, and a checkpoint
whose second network is broken keeps the server from starting."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.local_server import LocalServer
from app.main import create_app
from tests.app.test_faults import launcher_refusal
from tests.training import both_directions

Client = httpx.Client | TestClient

# the checkpoints' fixtures (pytest finds them by name in this module)
both_checkpoint = both_directions.both_checkpoint
forward_checkpoint = both_directions.forward_checkpoint


def settings_for(checkpoint: Path) -> Settings:
    return Settings(checkpoint=checkpoint, device="cpu", max_score_names=100)


@pytest.fixture(scope="module")
def both_client(both_checkpoint: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(both_checkpoint))) as c:
        yield c


@pytest.fixture(scope="module")
def both_server(both_checkpoint: Path) -> Iterator[str]:
    env = {"NAMEGEN_CHECKPOINT": str(both_checkpoint), "NAMEGEN_MAX_SCORE_NAMES": "100"}
    with LocalServer(env) as server:
        yield server.base


@pytest.fixture(params=["in_process", "uvicorn"])
def both_api(request: pytest.FixtureRequest) -> Iterator[Client]:
    if request.param == "in_process":
        yield request.getfixturevalue("both_client")
    else:
        with httpx.Client(base_url=request.getfixturevalue("both_server"), timeout=30) as c:
            yield c


def post(api: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(path, json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def meets(name: str, body: dict[str, Any]) -> bool:
    return (
        name.startswith(body.get("prefix", ""))
        and name.endswith(body.get("ends_with", ""))
        and body.get("contains", "") in name
    )


def assert_scored_alike(api: Client, body: dict[str, Any], names: list[dict[str, Any]]) -> None:
    """/score (under the request's labels) gives each name its logprob."""
    if not names:
        return
    scored = post(
        api, "/score", {"names": [g["name"] for g in names], "labels": body.get("labels")}
    )
    for g, s in zip(names, scored["scores"], strict=True):
        assert g["logprob"] == pytest.approx(s["logprob"], abs=1e-4), g["name"]


REQUESTS = [
    {"n": 30, "seed": 1, "ends_with": "a"},
    {"n": 20, "seed": 2, "ends_with": "la", "labels": {"sex": "F"}},
    {"n": 15, "seed": 3, "prefix": "s", "ends_with": "o", "labels": {"decade": 2000}},
    {"n": 15, "seed": 4, "contains": "li", "max_length": 10},
    {"n": 10, "seed": 5, "contains": "n", "prefix": "b", "ends_with": "a", "unique": True},
    {"n": 10, "seed": 6, "contains": "r", "labels": {"sex": "M", "decade": 1900}},
]


@pytest.mark.parametrize("body", REQUESTS, ids=lambda b: ",".join(sorted(b)))
def test_names_meet_their_constraints_and_score_as_they_say(
    both_api: Client, body: dict[str, Any]
) -> None:
    out = post(both_api, "/generate", body)
    assert out["complete"] and len(out["names"]) == body["n"]
    assert all(meets(g["name"], body) for g in out["names"])
    assert_scored_alike(both_api, body, out["names"])


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    prefix=st.text(alphabet="bcdstv", max_size=1),
    ends_with=st.text(alphabet="aeilnoru", max_size=2),
    contains=st.text(alphabet="aeilnru", max_size=2),
    labels=st.sampled_from([None, {"sex": "F"}, {"sex": "M", "decade": 1900}]),
    seed=st.integers(0, 2**31),
)
def test_every_name_meets_every_constraint(
    both_client: TestClient,
    prefix: str,
    ends_with: str,
    contains: str,
    labels: dict[str, Any] | None,
    seed: int,
) -> None:
    body = {
        "n": 8,
        "seed": seed,
        "prefix": prefix,
        "ends_with": ends_with,
        "contains": contains,
        "labels": labels,
        "max_length": 10,
    }
    out = post(both_client, "/generate", body)
    assert out["complete"] == (len(out["names"]) == 8)
    assert all(meets(g["name"], body) and len(g["name"]) <= 10 for g in out["names"])
    assert_scored_alike(both_client, body, out["names"])


def test_seeded_requests_repeat_alone_or_together(both_server: str) -> None:
    with httpx.Client(base_url=both_server, timeout=30) as api:
        alone = [post(api, "/generate", body) for body in REQUESTS]
        with ThreadPoolExecutor(len(REQUESTS)) as pool:  # merged in the continuous batch
            together = list(pool.map(lambda b: post(api, "/generate", b), REQUESTS * 2))
    for i, body in enumerate(REQUESTS):
        for out in (together[i], together[i + len(REQUESTS)]):
            assert [g["name"] for g in out["names"]] == [g["name"] for g in alone[i]["names"]]
            assert out["sampled"] == alone[i]["sampled"], body


def test_model_lists_its_directions(both_client: TestClient, forward_checkpoint: Path) -> None:
    info = both_client.get("/model").json()
    assert info["directions"] == ["forward", "backward"]
    assert info["backward"]["metrics"]["val_loss"] > 0 and info["backward"]["config"]
    with TestClient(create_app(settings_for(forward_checkpoint))) as one:
        single = one.get("/model").json()
    assert single["directions"] == ["forward"] and single["backward"] is None


@pytest.mark.parametrize("field", ["ends_with", "contains"])
def test_one_direction_refuses_endings_by_field(forward_checkpoint: Path, field: str) -> None:
    with TestClient(create_app(settings_for(forward_checkpoint))) as one:
        r = one.post("/generate", json={"n": 3, field: "a"})
    assert r.status_code == 422
    (detail,) = r.json()["error"]["details"]
    assert detail == {"field": field, "message": "this checkpoint has no backward network"}


def test_a_broken_second_network_keeps_the_server_from_starting(
    both_checkpoint: Path, tmp_path: Path
) -> None:
    path = tmp_path / "both"
    shutil.copytree(both_checkpoint, path)
    weights = path / json.loads((path / "meta.json").read_text())["backward"]["file"]["path"]
    weights.write_bytes(weights.read_bytes()[:1000])
    line = launcher_refusal(path)
    assert f"backward network file {weights.name} is truncated or corrupted" in line

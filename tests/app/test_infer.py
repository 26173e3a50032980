"""POST /infer: the posterior of every label column for each name, as Bayes' rule over the
conditional model gives it, with the checkpoint's calibrated prior and temperature."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.local_server import LocalServer
from app.main import create_app
from model.checkpoint import load_checkpoint
from model.posterior import infer_labels
from model.wavenet import WaveNet
from tests.app import labelled
from tests.app.conftest import CHECKPOINT
from tests.app.labelled import Client

# the labelled checkpoint's fixtures (pytest finds them by name in this module)
labelled_checkpoint = labelled.labelled_checkpoint
labelled_client = labelled.labelled_client
labelled_server = labelled.labelled_server
labelled_api = labelled.labelled_api

# names never seen in training: girls' end in 'a', boys' in 'o'; 2000s' start with s, t, v
NEW_NAMES = ["sunila", "dirlo", "talina", "burno"]
TRUTH = [("F", "2000"), ("M", "1900"), ("F", "2000"), ("M", "1900")]


def infer(api: Client, names: list[str]) -> dict[str, Any]:
    r = api.post("/infer", json={"names": names})
    assert r.status_code == 200, r.text
    return r.json()


def test_posteriors_sum_to_one_and_pick_the_labels_that_made_the_name(
    labelled_api: Client,
) -> None:
    resp = infer(labelled_api, NEW_NAMES)
    assert [r["name"] for r in resp["results"]] == NEW_NAMES
    for result, (sex, decade) in zip(resp["results"], TRUTH, strict=True):
        columns = result["labels"]
        assert list(columns) == ["sex", "decade"]
        for column in columns.values():
            assert sum(column["probs"].values()) == pytest.approx(1, abs=1e-5)
            assert all(0 <= p <= 1 for p in column["probs"].values())
            assert column["best"] == max(column["probs"], key=column["probs"].get)
        assert list(columns["sex"]["probs"]) == ["F", "M"]
        assert (columns["sex"]["best"], columns["decade"]["best"]) == (sex, decade)
        assert columns["sex"]["probs"][sex] > 0.8
        # decade is ordinal: its expected value and year; sex has neither
        assert columns["sex"]["expected"] is None and columns["sex"]["expected_year"] is None
        probs = columns["decade"]["probs"]
        expected = 1900 * probs["1900"] + 2000 * probs["2000"]
        assert columns["decade"]["expected"] == pytest.approx(expected, abs=1e-3)
        assert columns["decade"]["expected_year"] == pytest.approx(expected + 5, abs=1e-3)


def test_infer_equals_the_model_and_its_calibration(
    labelled_api: Client, labelled_checkpoint: Path
) -> None:
    ckpt = load_checkpoint(labelled_checkpoint)
    assert ckpt.labels is not None and isinstance(ckpt.model, WaveNet)
    resp = infer(labelled_api, [" Sunila ", "bana"])  # trimmed and lowercased
    calibration = ckpt.meta["calibration"]
    assert (resp["prior"], resp["temperature"]) == (
        calibration["prior"],
        calibration["temperature"],
    )
    assert resp["calibrated"] is True
    want = infer_labels(ckpt.model, ckpt.vocab, ckpt.labels, ["sunila", "bana"])
    for got, w in zip(resp["results"], want, strict=True):
        assert got["name"] == w.name and got["logprob"] == pytest.approx(w.logprob, abs=1e-4)
        for name, column in w.columns.items():
            assert got["labels"][name]["probs"] == pytest.approx(column.probs, abs=1e-5)


def test_logprob_is_the_score_with_labels_unknown(labelled_api: Client) -> None:
    names = ["bana", "sunila", "rrrrr"]
    inferred = infer(labelled_api, names)["results"]
    scored = labelled_api.post("/score", json={"names": names}).json()["scores"]
    for i, s in zip(inferred, scored, strict=True):
        assert i["logprob"] == pytest.approx(s["logprob"], abs=1e-4)
        assert i["in_corpus"] == s["in_corpus"]
    assert inferred[0]["logprob"] > inferred[2]["logprob"]  # a likely name, an unlikely one
    assert math.isfinite(inferred[2]["logprob"])


def test_in_corpus(labelled_api: Client, labelled_checkpoint: Path) -> None:
    known = sorted(load_checkpoint(labelled_checkpoint).corpus_names)[0]
    results = infer(labelled_api, [known, "sunila"])["results"]
    assert [r["in_corpus"] for r in results] == [True, False]


def test_every_bad_name_is_reported(labelled_api: Client) -> None:
    names = ["bana", "zo3y", "", "a" * 65, "  "]
    r = labelled_api.post("/infer", json={"names": names})
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert [d["field"] for d in details] == ["names.1", "names.2", "names.3", "names.4"]
    assert "'z'" in details[0]["message"]  # the first character outside the vocabulary


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"names": []}, "names"),
        ({"names": ["bana"] * 101}, "at most 100 names"),
        ({"names": "bana"}, "names"),
        ({"names": ["bana"], "labels": {"sex": "F"}}, "labels"),  # /infer takes no labels
        ({}, "names"),
    ],
)
def test_bad_requests(labelled_api: Client, body: dict[str, Any], needle: str) -> None:
    r = labelled_api.post("/infer", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"]


def test_a_body_that_is_not_json_typed_gets_415(labelled_api: Client) -> None:
    r = labelled_api.post("/infer", content=b'{"names": ["bana"]}')
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"


def test_a_checkpoint_without_labels_answers_409(unlabelled_api: Client) -> None:
    r = unlabelled_api.post("/infer", json={"names": ["emma"]})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "conflict" and "this checkpoint has no labels" in err["message"]


def test_infer_needs_an_api_key_when_keys_are_set() -> None:
    settings = Settings(checkpoint=CHECKPOINT, device="cpu", api_keys=["secret"])
    with TestClient(create_app(settings)) as locked:
        assert locked.post("/infer", json={"names": ["emma"]}).status_code == 401
        keyed = locked.post("/infer", json={"names": ["emma"]}, headers={"X-API-Key": "secret"})
        assert keyed.status_code == 200, keyed.text


def test_openapi_documents_infer(labelled_api: Client) -> None:
    spec = labelled_api.get("/openapi.json").json()
    assert spec["components"]["schemas"]["InferRequest"]["examples"]
    responses = spec["paths"]["/infer"]["post"]["responses"]
    assert {"200", "409", "422"} <= set(responses)


def test_infer_work_is_admitted_by_its_size() -> None:
    # every name under every label set is score work: more than fits in the time limit
    # is refused at once with 429, like a /score of that size, and counted
    env = {
        "NAMEGEN_CHECKPOINT": str(CHECKPOINT),
        "NAMEGEN_MAX_SCORE_NAMES": "1000",
        "NAMEGEN_REQUEST_TIMEOUT_S": "2",
    }
    with LocalServer(env) as server:
        small = httpx.post(f"{server.base}/infer", json={"names": ["emma", "noah"]}, timeout=30)
        assert small.status_code == 200  # and the server has measured its speed
        names = ["abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"] * 1000
        r = httpx.post(f"{server.base}/infer", json={"names": names}, timeout=30)
        assert r.status_code == 429, r.text[:200]
        assert int(r.headers["retry-after"]) >= 1
        assert r.elapsed.total_seconds() < 1.5  # at once, not after its 2 s
        metrics = httpx.get(f"{server.base}/metrics").text
        assert "namegen_rejected_total 1.0" in metrics

"""The HTTP API, in process and over a real uvicorn: every control and every bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from model.checkpoint import load_checkpoint
from tests.app.conftest import CHECKPOINT, corpus_names
from tests.model.test_sampling import greedy_by_full_forward

Client = httpx.Client | TestClient


def generate(api: Client, **body: Any) -> dict[str, Any]:
    r = api.post("/generate", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def names_of(resp: dict[str, Any]) -> list[str]:
    return [g["name"] for g in resp["names"]]


def test_generate_defaults(api: Client) -> None:
    resp = generate(api)
    assert len(resp["names"]) == 10 and resp["complete"] is True
    for g in resp["names"]:
        assert g["name"] and g["name"].isalpha() and g["logprob"] < 0


def test_same_seed_same_names(api: Client) -> None:
    a = generate(api, n=20, seed=123)
    assert generate(api, n=20, seed=123) == a
    assert names_of(generate(api, n=20, seed=124)) != names_of(a)
    assert a["seed"] == 123
    unseeded = generate(api, n=5)
    assert generate(api, n=5, seed=unseeded["seed"])["names"] == unseeded["names"]


def test_temperature_zero_is_greedy(api: Client) -> None:
    names = names_of(generate(api, n=4, temperature=0, max_length=16))
    model = load_checkpoint(CHECKPOINT).model
    vocab = load_checkpoint(CHECKPOINT).vocab
    assert names == [vocab.decode(greedy_by_full_forward(model, 16))] * 4
    assert names_of(generate(api, n=4, top_k=1, seed=5, max_length=16)) == names


def test_prefix_and_lengths(api: Client) -> None:
    resp = generate(api, n=200, prefix="Ma", min_length=5, max_length=7, seed=1)
    for name in names_of(resp):
        assert name.startswith("ma") and 5 <= len(name) <= 7
    assert any(len(n) == 7 for n in names_of(resp))


def test_top_k_top_p_temperature(api: Client) -> None:
    for body in ({"top_k": 3}, {"top_p": 0.5}, {"temperature": 0.5}, {"temperature": 2.0}):
        resp = generate(api, n=50, seed=3, **body)
        assert len(resp["names"]) == 50


def test_exclude_existing_and_unique(api: Client) -> None:
    corpus = corpus_names()
    resp = generate(api, n=300, seed=2, exclude_existing=True, unique=True)
    names = names_of(resp)
    assert resp["complete"] and len(names) == 300 and len(set(names)) == 300
    assert not set(names) & corpus
    assert all(g["in_corpus"] is False for g in resp["names"])
    plain = generate(api, n=300, seed=2)
    assert set(names_of(plain)) & corpus  # without the filter, corpus names do come up


def test_impossible_filters_return_what_they_found_and_say_why(api: Client) -> None:
    resp = generate(api, n=50, max_length=1, unique=True, seed=0)
    assert resp["complete"] is False and 0 < len(resp["names"]) <= 26
    assert resp["stopped"] == "no_new_names"  # long before the budget of 1,100 samples
    assert resp["sampled"] < 50 * 20 + 100
    assert generate(api, n=3, seed=0)["stopped"] is None


def test_score_equals_generate_logprob(api: Client) -> None:
    resp = generate(api, n=100, seed=9)
    names = names_of(resp)
    scores = api.post("/score", json={"names": names}).json()["scores"]
    for g, s in zip(resp["names"], scores, strict=True):
        assert s["name"] == g["name"]
        assert s["logprob"] == pytest.approx(g["logprob"], abs=1e-4)


def test_score_alone_equals_in_batch(api: Client) -> None:
    batch = [*names_of(generate(api, n=99, seed=4)), "emma"]
    together = api.post("/score", json={"names": batch}).json()["scores"]
    alone = api.post("/score", json={"names": ["emma"]}).json()["scores"][0]
    assert alone["logprob"] == pytest.approx(together[-1]["logprob"], abs=1e-5)


def test_score_fields(api: Client) -> None:
    s = api.post("/score", json={"names": ["Emma ", "qzxv"]}).json()["scores"]
    emma, junk = s
    assert emma["name"] == "emma" and emma["in_corpus"] is True and junk["in_corpus"] is False
    assert [c["char"] for c in emma["char_probs"]] == list("emma.")
    assert emma["logprob"] == pytest.approx(
        sum(math.log(c["prob"]) for c in emma["char_probs"]), abs=1e-4
    )
    assert emma["logprob_per_char"] == pytest.approx(emma["logprob"] / 5)
    assert emma["perplexity"] == pytest.approx(math.exp(-emma["logprob_per_char"]))
    assert emma["logprob"] > junk["logprob"]


BAD_GENERATE = [
    ({"n": "ten"}, "n"),
    ({"n": 0}, "n"),
    ({"n": 10**9}, "n"),
    ({"n": 1.5}, "n"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.01}, "top_p"),
    ({"top_k": 0}, "top_k"),
    ({"prefix": "a1"}, "prefix"),
    ({"prefix": 5}, "prefix"),
    ({"min_length": 9, "max_length": 4}, "min_length"),
    ({"max_length": 1000}, "max_length"),
    ({"seed": -1}, "seed"),
    ({"bogus": True}, "bogus"),
]


@pytest.mark.parametrize(("body", "field"), BAD_GENERATE)
def test_bad_generate_inputs(api: Client, body: dict[str, Any], field: str) -> None:
    r = api.post("/generate", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_error" and field in err["message"]


BAD_SCORE = [
    ({"names": []}, "names"),
    ({"names": "emma"}, "names"),
    ({"names": [""]}, "names.0"),
    ({"names": ["emma", "  "]}, "names.1"),
    ({"names": ["emma", "zo3y"]}, "'3'"),
    ({"names": ["a" * 65]}, "names.0"),
    ({"names": ["emma"] * 101}, "names"),
    ({"names": [1, 2]}, "names.0"),
    ({}, "names"),
]


@pytest.mark.parametrize(("body", "needle"), BAD_SCORE)
def test_bad_score_inputs(api: Client, body: dict[str, Any], needle: str) -> None:
    r = api.post("/score", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"]


def test_unknown_character_names_name_and_character(api: Client) -> None:
    r = api.post("/score", json={"names": ["ann", "zo3y"]})
    assert "'zo3y'" in r.json()["error"]["message"] and "'3'" in r.json()["error"]["message"]


def test_invalid_json_names_the_body_and_the_position(api: Client) -> None:
    r = api.post("/generate", content=b'{"n": 5,', headers={"content-type": "application/json"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert "invalid JSON at character 8" in err["message"]
    assert [d["field"] for d in err["details"]] == ["body"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_typed_gets_415(api: Client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    for path, body in (("/generate", b'{"n": 1}'), ("/score", b'{"names": ["emma"]}')):
        r = api.post(path, content=body, headers=headers)
        assert r.status_code == 415, r.text
        err = r.json()["error"]
        assert err["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in err["message"]
        assert (repr(content_type) if content_type else "Content-Type: none") in err["message"]
    typed = {"content-type": "application/json; charset=utf-8"}
    assert api.post("/generate", content=b'{"n": 1}', headers=typed).status_code == 200


@pytest.mark.parametrize("body", [b'{"temperature": NaN}', b'{"top_p": Infinity}'])
def test_nan_and_infinity_are_refused_as_such(api: Client, body: bytes) -> None:
    r = api.post("/generate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "finite number" in r.json()["error"]["message"]


def test_prefix_is_trimmed_and_lowercased(api: Client) -> None:
    assert generate(api, n=5, seed=3, prefix=" Ma ") == generate(api, n=5, seed=3, prefix="ma")


def test_a_prefix_longer_than_max_length_says_what_max_length_is(api: Client) -> None:
    r = api.post("/generate", json={"prefix": "maximilian", "max_length": 6})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["details"] == [
        {"field": "prefix", "message": "prefix has 10 characters, more than max_length (6)"}
    ]
    # the default max_length too
    r = api.post("/generate", json={"prefix": "a" * 20})
    assert "more than max_length (16)" in r.json()["error"]["message"]


def test_every_bad_name_is_reported(api: Client) -> None:
    names = ["emma", "zo3y", "", "a" * 65, "ann", "x-y", "  "]
    r = api.post("/score", json={"names": names})
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert [d["field"] for d in details] == ["names.1", "names.2", "names.3", "names.5", "names.6"]
    assert "'3'" in details[0]["message"] and "'-'" in details[3]["message"]
    assert "empty" in details[1]["message"] and "longer than 64" in details[2]["message"]


def test_every_problem_of_a_generate_request_is_reported(api: Client) -> None:
    r = api.post("/generate", json={"n": 0, "top_p": 2, "bogus": 1})
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert sorted(fields) == ["bogus", "n", "top_p"]


def test_ten_megabyte_body_is_413(api: Client) -> None:
    body = json.dumps({"names": ["a" * 1000] * 10_000}).encode()
    r = api.post("/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_and_method(api: Client) -> None:
    assert api.get("/nope").json()["error"]["code"] == "not_found"
    assert api.get("/generate").status_code == 405


def test_health_ready_model_metrics(api: Client) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/ready").json() == {"status": "ready"}
    info = api.get("/model").json()
    assert info["num_params"] > 0 and info["vocab"].startswith(".")
    assert {"val_loss", "test_loss"} <= set(info["metrics"])
    assert len(info["fingerprint"]) == 64
    generate(api, n=7)
    text = api.get("/metrics").text
    assert 'namegen_requests_total{endpoint="/generate",method="POST",status="200"}' in text
    assert "namegen_request_seconds_bucket" in text and "namegen_names_generated_total" in text


def test_openapi_has_an_example_for_every_request(api: Client) -> None:
    spec = api.get("/openapi.json").json()
    for name in ("GenerateRequest", "ScoreRequest"):
        assert spec["components"]["schemas"][name]["examples"]
    generate = spec["paths"]["/generate"]["post"]
    body = generate["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/GenerateRequest")
    stopped = spec["components"]["schemas"]["GenerateOut"]["properties"]["stopped"]
    assert {"budget", "no_new_names"} <= set(stopped["anyOf"][0]["enum"])
    assert "budget" in stopped["description"] and "no_new_names" in stopped["description"]


def test_the_documented_response_is_what_the_documented_request_gives(api: Client) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    request = schemas["GenerateRequest"]["examples"][0]
    (expected,) = schemas["GenerateOut"]["examples"]
    got = generate(api, **request)
    assert [g["name"] for g in got["names"]] == [g["name"] for g in expected["names"]]
    assert [g["logprob"] for g in got["names"]] == pytest.approx(
        [g["logprob"] for g in expected["names"]], abs=1e-3
    )
    assert got["stopped"] is None  # the schema's examples leave out nulls
    assert {**got, "names": None, "stopped": None} == {**expected, "names": None, "stopped": None}

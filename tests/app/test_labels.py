"""Labels in the API: /generate and /score under labels of a conditional checkpoint, every
bad label name or value reported by field, /model's label columns and priors, and a
checkpoint without labels refusing label fields."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from model.checkpoint import load_checkpoint
from model.scoring import score_names
from model.wavenet import WaveNet
from tests.app import labelled
from tests.app.labelled import Client

# the labelled checkpoint's fixtures (pytest finds them by name in this module)
labelled_checkpoint = labelled.labelled_checkpoint
labelled_client = labelled.labelled_client
labelled_server = labelled.labelled_server
labelled_api = labelled.labelled_api

GIRLS_2000 = {"sex": "F", "decade": "2000"}


def post(api: Client, path: str, **body: Any) -> dict[str, Any]:
    r = api.post(path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def fields(api: Client, path: str, **body: Any) -> dict[str, str]:
    """The 422's details, field by field."""
    r = api.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    return {d["field"]: d["message"] for d in r.json()["error"]["details"]}


# --- a checkpoint without labels (the shipped one) ---


@pytest.mark.parametrize("path", ["/generate", "/score"])
def test_a_checkpoint_without_labels_refuses_label_fields(
    unlabelled_api: Client, path: str
) -> None:
    api = unlabelled_api
    body: dict[str, Any] = {"names": ["emma"]} if path == "/score" else {"n": 1}
    got = fields(api, path, **body, labels={"sex": "F"})
    assert got == {"labels": "this checkpoint has no labels"}
    # no labels at all, or none given, is the plain request
    assert api.post(path, json={**body, "labels": None}).status_code == 200
    assert api.post(path, json={**body, "labels": {}}).status_code == 200


def test_model_without_labels_says_so_and_names_the_checkpoint(unlabelled_api: Client) -> None:
    info = unlabelled_api.get("/model").json()
    assert info["labels"] is None
    assert info["checkpoint"] == "babynames-2017"  # its name, not the server's path


def test_score_without_labels_says_none_were_used(unlabelled_api: Client) -> None:
    assert post(unlabelled_api, "/score", names=["emma"])["labels"] == {}


# --- a conditional checkpoint ---


def test_model_lists_label_columns_values_and_priors(
    labelled_api: Client, labelled_checkpoint: Path
) -> None:
    info = labelled_api.get("/model").json()
    assert info["checkpoint"] == labelled_checkpoint.name and "/" not in info["checkpoint"]
    labels = info["labels"]
    columns = {c["name"]: c for c in labels["columns"]}
    assert list(columns) == ["sex", "decade"]
    assert columns["sex"]["values"] == ["F", "M"] and columns["sex"]["ordinal"] is False
    assert columns["decade"]["values"] == ["1900", "2000"] and columns["decade"]["ordinal"]
    space = load_checkpoint(labelled_checkpoint).labels
    assert space is not None
    for c in columns.values():
        for kind in ("types", "births"):
            prior = c[f"prior_{kind}"]
            assert list(prior) == c["values"] and sum(prior.values()) == pytest.approx(1)
            assert list(prior.values()) == pytest.approx(space.marginal(c["name"], kind))
    # counted two ways, so (with random counts) two different priors
    assert columns["sex"]["prior_types"] != columns["sex"]["prior_births"]
    assert (labels["prior"], labels["temperature"]) == (space.prior, space.temperature)
    assert labels["calibrated"] is True


BAD_LABELS = [
    ({"sexx": "F"}, {"labels.sexx": "unknown label 'sexx'; labels: sex, decade"}),
    ({"sex": "X"}, {"labels.sex": "label 'sex' has no value 'X'; allowed: F, M"}),
    ({"decade": 1950}, {"labels.decade": "label 'decade' has no value 1950; allowed: 1900, 2000"}),
    ({"sex": True}, {"labels.sex": "a label value is a string or an integer, not bool"}),
    ({"sex": 1.5}, {"labels.sex": "a label value is a string or an integer, not float"}),
    ({"sex": ""}, {"labels.sex": "a label value has 1 to 64 characters"}),
    # every problem, not the first
    (
        {"sex": "Q", "era": "x", "decade": "2000"},
        {
            "labels.sex": "label 'sex' has no value 'Q'; allowed: F, M",
            "labels.era": "unknown label 'era'; labels: sex, decade",
        },
    ),
]


@pytest.mark.parametrize(("labels", "expected"), BAD_LABELS)
@pytest.mark.parametrize("path", ["/generate", "/score"])
def test_bad_labels_are_named_by_field(
    labelled_api: Client, path: str, labels: dict[str, Any], expected: dict[str, str]
) -> None:
    body: dict[str, Any] = {"names": ["bana"]} if path == "/score" else {"n": 1}
    assert fields(labelled_api, path, **body, labels=labels) == expected


def test_label_errors_come_with_the_other_problems(labelled_api: Client) -> None:
    got = fields(labelled_api, "/score", names=["ann", "zo3y"], labels={"sex": "X"})
    assert set(got) == {"names.1", "labels.sex"}
    got = fields(labelled_api, "/generate", n=0, prefix="a1", labels={"sex": "X"})
    assert set(got) == {"n"}  # the schema's errors come first, as for every field


def test_score_under_labels_says_which_and_equals_the_model(
    labelled_api: Client, labelled_checkpoint: Path
) -> None:
    names = ["sunila", "dirlo", "bana"]
    # values match ignoring case, and integers match their text; the response spells them
    resp = post(labelled_api, "/score", names=names, labels={"sex": "f", "decade": 2000})
    assert resp["labels"] == GIRLS_2000
    decade_only = post(labelled_api, "/score", names=names, labels={"decade": "2000"})
    assert decade_only["labels"] == {"decade": "2000"}
    unknown = post(labelled_api, "/score", names=names)
    assert unknown["labels"] == {}
    ckpt = load_checkpoint(labelled_checkpoint)
    assert ckpt.labels is not None and isinstance(ckpt.model, WaveNet)
    for got, labels in ((resp, GIRLS_2000), (decade_only, {"decade": "2000"}), (unknown, {})):
        ids = [ckpt.labels.encode(labels)] * len(names)
        want = score_names(ckpt.model, ckpt.vocab, names, ids)
        assert [s["logprob"] for s in got["scores"]] == pytest.approx(
            [w.logprob for w in want], abs=1e-4
        )
        for s in got["scores"]:
            assert s["logprob"] == pytest.approx(
                sum(math.log(c["prob"]) for c in s["char_probs"]), abs=1e-4
            )
    # the labels matter: a girls' name is likelier as a girl's, a boys' as a boy's
    boys = post(labelled_api, "/score", names=names, labels={"sex": "M", "decade": 2000})
    girl, boy = resp["scores"], boys["scores"]
    assert girl[0]["logprob"] > boy[0]["logprob"] and girl[1]["logprob"] < boy[1]["logprob"]


def test_score_under_labels_equals_generate_under_the_same_labels(labelled_api: Client) -> None:
    for labels in (GIRLS_2000, {"sex": "M"}, {"decade": 1900}):
        gen = post(labelled_api, "/generate", n=30, seed=7, labels=labels)
        names = [g["name"] for g in gen["names"]]
        scores = post(labelled_api, "/score", names=names, labels=labels)["scores"]
        assert [s["logprob"] for s in scores] == pytest.approx(
            [g["logprob"] for g in gen["names"]], abs=1e-4
        )


def test_generated_names_carry_their_labels(labelled_api: Client) -> None:
    def ends(labels: dict[str, str]) -> float:
        names = post(labelled_api, "/generate", n=200, seed=1, labels=labels)["names"]
        return sum(g["name"].endswith("a") for g in names) / len(names)

    assert ends({"sex": "F"}) > 0.8 and ends({"sex": "M"}) < 0.2  # 0.95 and 0.05 here

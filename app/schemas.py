"""Request and response bodies. Limits live in the bodies as Field constraints; the few
that depend on settings (n, list sizes) are checked against them in the routers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from model.request import MAX_LABELS, Labels, StopReason

HARD_MAX_SCORE_NAMES = 1_000

# The /generate body is model/request.py's GenerateRequest itself: one definition of a
# generation request, its defaults and its checks, from HTTP to the sampler.


class GeneratedOut(BaseModel):
    name: str
    logprob: float = Field(description="natural log of P(name) at temperature 1, end included")
    in_corpus: bool


class GenerateOut(BaseModel):
    # what the shipped checkpoint answers to GenerateRequest's first example (a test checks)
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "names": [
                        {"name": "shirley", "logprob": -8.73497, "in_corpus": True},
                        {"name": "tanon", "logprob": -11.2981, "in_corpus": False},
                        {"name": "hiric", "logprob": -15.08, "in_corpus": False},
                        {"name": "tyren", "logprob": -9.47337, "in_corpus": True},
                        {"name": "harre", "logprob": -12.1194, "in_corpus": False},
                    ],
                    "complete": True,  # (and "stopped": null, which the schema drops)
                    "sampled": 5,
                    "seed": 42,
                }
            ]
        }
    )

    names: list[GeneratedOut]
    complete: bool = Field(description="true when all n names came back")
    stopped: StopReason | None = Field(
        description="why fewer than n came back (null when complete): 'budget', the filters'"
        " budget of samples ran out; 'no_new_names', two rounds in a row (greedy: one) found"
        " no name the filters let through"
    )
    sampled: int = Field(description="names sampled, rejected ones included")
    seed: int = Field(description="the seed used; send it back to repeat the response")


Names = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True)]],
    Field(min_length=1, max_length=HARD_MAX_SCORE_NAMES, description="trimmed and lowercased"),
]


class ScoreRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"names": ["emma", "zyxwv"]},
                {"names": ["emma", "dorothy"], "labels": {"sex": "F", "decade": 1920}},
            ]
        },
    )

    names: Names
    labels: Labels | None = Field(
        None,
        max_length=MAX_LABELS,
        description="score every name under these labels (a conditional checkpoint's columns,"
        " any subset; the others unknown)",
    )


class CharProb(BaseModel):
    char: str = Field(description="'.' is the end of the name")
    prob: float


class ScoreOut(BaseModel):
    name: str
    logprob: float
    logprob_per_char: float = Field(description="logprob / (characters + 1)")
    perplexity: float
    char_probs: list[CharProb]
    in_corpus: bool


class ScoresOut(BaseModel):
    scores: list[ScoreOut]
    labels: dict[str, str] = Field(
        description="the labels every name was scored under, as the checkpoint spells them;"
        " columns left out were unknown"
    )


class InferRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"names": ["emma", "dorothy", "kayden"]}]}
    )

    names: Names


class ColumnOut(BaseModel):
    probs: dict[str, float] = Field(description="P(value | name) of every value, summing to 1")
    best: str = Field(description="the most likely value")
    expected: float | None = Field(
        description="ordinal columns: the posterior mean of the values (null otherwise)"
    )
    expected_year: float | None = Field(
        None, description="a decade column: the expected year (a decade's mean is its start + 5)"
    )


class InferredOut(BaseModel):
    name: str
    labels: dict[str, ColumnOut] = Field(description="the posterior of every label column")
    logprob: float = Field(
        description="natural log of P(name) with every label unknown: how much the model"
        " supports the name at all"
    )
    in_corpus: bool


class InferOut(BaseModel):
    results: list[InferredOut]
    prior: str = Field(
        description="the prior over labels, from the training corpus: 'types' (counted by"
        " distinct names) or 'births' (by the count column)"
    )
    temperature: float = Field(
        description="the likelihood enters as P(name | labels) ** (1 / temperature)"
    )
    calibrated: bool = Field(
        description="true when prior and temperature were fitted on validation names"
    )


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorOut(BaseModel):
    error: ErrorBody


class LabelColumnOut(BaseModel):
    name: str
    values: list[str] = Field(description="in order; an ordinal column's sort by number")
    ordinal: bool
    prior_types: dict[str, float] = Field(
        description="P(value) in the training corpus counted by distinct names"
    )
    prior_births: dict[str, float] | None = Field(
        description="P(value) counted by births (the corpus's count column); null without"
    )


class LabelsOut(BaseModel):
    columns: list[LabelColumnOut]
    prior: str = Field(description="the prior /infer uses: 'types' or 'births'")
    temperature: float = Field(description="/infer's temperature on the likelihoods")
    calibrated: bool = Field(description="prior and temperature fitted on validation names")


class ModelOut(BaseModel):
    fingerprint: str
    checkpoint: str = Field(description="the checkpoint's name (its directory's name)")
    num_params: int
    config: dict[str, Any]
    vocab: str
    corpus: dict[str, Any]
    metrics: dict[str, Any]
    training: dict[str, Any]
    device: str
    directions: list[str] = Field(
        description="the networks it holds: forward (left to right), and backward (right to "
        "left), which ends_with and contains need"
    )
    backward: dict[str, Any] | None = Field(
        None, description="the backward network: its config, parameters, metrics and training"
    )
    labels: LabelsOut | None = Field(
        description="a conditional checkpoint's label columns (null for one without labels)"
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        401: "missing or invalid API key",
        413: "request body too large",
        415: "the body is not JSON (Content-Type: application/json)",
        422: "invalid field (the message names it)",
        429: "queue full: retry after the Retry-After seconds",
        499: "the client closed the request",
        504: "not done within the time limit",
    }.items()
}

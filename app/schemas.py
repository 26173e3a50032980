"""Request and response bodies. Limits live here as Field constraints; the few that
depend on settings (n, list sizes) are checked against them in the routers."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

HARD_MAX_N = 10_000
HARD_MAX_LENGTH = 64
HARD_MAX_SCORE_NAMES = 1_000


class GenerateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"n": 5, "temperature": 0.8, "seed": 42},
                {
                    "n": 3,
                    "prefix": "ma",
                    "min_length": 4,
                    "max_length": 8,
                    "top_k": 10,
                    "exclude_existing": True,
                    "unique": True,
                },
            ]
        },
    )

    n: int = Field(10, ge=1, le=HARD_MAX_N, description="how many names")
    temperature: float = Field(1.0, ge=0, le=100, description="0 means greedy")
    top_k: int | None = Field(None, ge=1, le=1_000, description="sample from the k likeliest")
    top_p: float | None = Field(
        None, gt=0, le=1, description="sample from the smallest set with this much mass"
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="same seed and request, same names"
    )
    prefix: str = Field("", max_length=HARD_MAX_LENGTH, description="names start with this")
    min_length: int = Field(1, ge=1, le=HARD_MAX_LENGTH, description="characters, prefix included")
    max_length: int = Field(16, ge=1, le=HARD_MAX_LENGTH, description="end is forced here")
    exclude_existing: bool = Field(False, description="never return a training-corpus name")
    unique: bool = Field(False, description="no name twice in one response")

    @model_validator(mode="after")
    def lengths_consistent(self) -> GenerateIn:
        if self.min_length > self.max_length:
            raise ValueError("min_length must not exceed max_length")
        if len(self.prefix) > self.max_length:
            raise ValueError("prefix must not be longer than max_length")
        return self


class GeneratedOut(BaseModel):
    name: str
    logprob: float = Field(description="natural log of P(name) at temperature 1, end included")
    in_corpus: bool


class GenerateOut(BaseModel):
    names: list[GeneratedOut]
    complete: bool = Field(description="false when the filters left fewer than n in the budget")
    sampled: int = Field(description="names sampled, rejected ones included")
    seed: int = Field(description="the seed used; send it back to repeat the response")


class ScoreIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"names": ["emma", "zyxwv"]}]}
    )

    names: list[str] = Field(min_length=1, max_length=HARD_MAX_SCORE_NAMES)


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


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorOut(BaseModel):
    error: ErrorBody


class ModelOut(BaseModel):
    fingerprint: str
    checkpoint: str
    num_params: int
    config: dict[str, Any]
    vocab: str
    corpus: dict[str, Any]
    metrics: dict[str, Any]
    training: dict[str, Any]
    device: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        401: "missing or invalid API key",
        413: "request body too large",
        422: "invalid field (the message names it)",
        429: "queue full: retry after the Retry-After seconds",
        499: "the client closed the request",
        504: "not done within the time limit",
    }.items()
}


def json_response(body: BaseModel) -> Response:
    """`body` as JSON, straight from pydantic. The routes keep `response_model` for the
    schema; returning the model itself would have FastAPI dump, re-validate and encode it
    again on every request."""
    return Response(body.model_dump_json(), media_type="application/json")

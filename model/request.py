"""A generation request, defined once: its controls with their defaults and limits, and
what it gives back. The HTTP API takes `GenerateRequest` as the /generate body, the engine
runs it, and the sampler reads its controls from it; nothing restates them.

The text constraints (`prefix`, `ends_with`, `contains`) and the distribution each
combination samples are described at `GenerateRequest`; model/constraints.py plans them.

Limits that depend on the server (its largest n, its largest max_length) or on the model
(the characters of a prefix) are checked by whoever knows them: the router, the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

HARD_MAX_N = 10_000
HARD_MAX_LENGTH = 64

# Why a request came back with fewer than n names: "budget" when the filters' budget of
# samples ran out, "no_new_names" when sampling stopped finding names the filters let
# through (two jobs in a row found none; greedy decoding, one), "time" when the request's
# time limit ran out.
StopReason = Literal["budget", "no_new_names", "time"]

# trimmed and lowercased like /score's names, before the length limits apply
Prefix = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=HARD_MAX_LENGTH)
]

MAX_LABELS = 16  # label columns one request may name
MAX_LABEL_CHARS = 64


def _label_value(value: object) -> object:
    # One error per bad value: a plain `str | int` reports one per member of the union,
    # and lax int would take true for 1.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError(
            "label_value",
            "a label value is a string or an integer, not {given}",
            {"given": type(value).__name__},
        )
    if isinstance(value, str) and not 0 < len(value) <= MAX_LABEL_CHARS:
        raise PydanticCustomError(
            "label_value", "a label value has 1 to {most} characters", {"most": MAX_LABEL_CHARS}
        )
    return value


LabelName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_CHARS)]
LabelValue = Annotated[str | int, BeforeValidator(_label_value)]
# Labels by column name, any subset of the checkpoint's columns (the others unknown). The
# schema checks their shape; whoever holds the checkpoint checks names and values.
Labels = dict[LabelName, LabelValue]


def overlap_length(prefix: str, ending: str) -> int:
    """The characters of the shortest name that starts with `prefix` and ends with
    `ending` (the longest overlap of the prefix's end and the ending's start shared)."""
    for shared in range(min(len(prefix), len(ending)), -1, -1):
        if prefix.endswith(ending[:shared]):
            return len(prefix) + len(ending) - shared
    return len(prefix) + len(ending)  # not reached: shared = 0 always matches


# Classifier-free guidance's weight w: the logits sampled are u + w (c - u), c under the
# labels and u with them unknown. At w = 1, names for F were 86% girls' names by the
# corpus and names for M 78% boys'; at w = 3, 98% and 96% (benchmarks/labels.py).
DEFAULT_GUIDANCE = 3.0


class GenerateRequest(BaseModel):
    """What each text constraint samples (names come from the sampling distribution:
    the model's at the request's temperature, top-k and top-p, under its labels and
    guided towards them by `guidance`):

    - `prefix`: the forward (left-to-right) model continuing the prefix.
    - `ends_with`: the backward (right-to-left) model continuing the reversed ending, so
      exactly that model's distribution of names with that ending.
    - `prefix` and `ends_with`: the side whose text is rarer (the smaller probability of
      starting so under the forward model, or of ending so under the backward model, at
      temperature 1) is sampled as above; names that fail the other are rejected.
    - `contains` (not inside `prefix` or `ends_with`, which would imply it): grown outward.
      The backward model continues the reversed substring to a name start, giving a left
      part L with probability P_backward(L | the name ends with the substring); then the
      forward model continues L + substring as a prefix, giving the rest R with probability
      P_forward(R | prefix L + substring). A name holding the substring once is drawn with
      the product of the two; this is not P(name | it contains the substring) (the left
      part is chosen as if the name ended there). `prefix` and `ends_with` alongside are
      met by rejection.

    Rejection samples in rounds within the filters' budget (`filtered`). Every name's
    logprob is the forward model's at temperature 1 under the labels, as /score gives it.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
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
                {"n": 5, "ends_with": "lyn", "seed": 1},
                {"n": 5, "prefix": "a", "ends_with": "a", "min_length": 4},
                {"n": 5, "contains": "ann", "max_length": 10},
            ]
        },
    )

    n: int = Field(10, ge=1, le=HARD_MAX_N, description="how many names")
    # finite only: Python's JSON parser reads NaN and Infinity, which no range check refuses
    # with a message that says what is wrong
    temperature: float = Field(1.0, ge=0, le=100, allow_inf_nan=False, description="0 means greedy")
    top_k: int | None = Field(None, ge=1, le=1_000, description="sample from the k likeliest")
    top_p: float | None = Field(
        None,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="sample from the smallest set with this much mass",
    )
    seed: int | None = Field(
        None, ge=0, le=2**63 - 1, description="same seed and request, same names"
    )
    prefix: Prefix = Field("", description="names start with this (trimmed, lowercased)")
    ends_with: Prefix = Field(
        "",
        description="names end with this (trimmed, lowercased; needs the backward network)",
        examples=["lyn"],
    )
    contains: Prefix = Field(
        "",
        description="names contain this (trimmed, lowercased; needs the backward network)",
        examples=["ann"],
    )
    min_length: int = Field(1, ge=1, le=HARD_MAX_LENGTH, description="characters, prefix included")
    max_length: int = Field(16, ge=1, le=HARD_MAX_LENGTH, description="end is forced here")
    exclude_existing: bool = Field(False, description="never return a training-corpus name")
    unique: bool = Field(False, description="no name twice in one response")
    labels: Labels | None = Field(
        None,
        max_length=MAX_LABELS,
        description="names for these labels (a conditional checkpoint's columns, any subset)",
        examples=[{"sex": "F", "decade": 1950}],
    )
    guidance: float = Field(
        DEFAULT_GUIDANCE,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="how strongly names follow the labels given: 1 samples the model under "
        "the labels; more makes them more typical of the labels (classifier-free guidance); "
        "0 ignores them. Without labels it changes nothing",
    )

    @model_validator(mode="after")
    def lengths_fit(self) -> GenerateRequest:
        # A model-level error has no location of its own: `field` in the context names
        # the field for the HTTP error's details.
        if self.min_length > self.max_length:
            raise PydanticCustomError(
                "min_length_above_max_length",
                "min_length ({min_length}) is more than max_length ({max_length})",
                {
                    "field": "min_length",
                    "min_length": self.min_length,
                    "max_length": self.max_length,
                },
            )
        if len(self.prefix) > self.max_length:
            raise PydanticCustomError(
                "prefix_too_long",
                "prefix has {length} characters, more than max_length ({max_length})",
                {"field": "prefix", "length": len(self.prefix), "max_length": self.max_length},
            )
        for field in ("ends_with", "contains"):
            text = getattr(self, field)
            if len(text) > self.max_length:
                raise PydanticCustomError(
                    "text_too_long",
                    "{field} has {length} characters, more than max_length ({max_length})",
                    {"field": field, "length": len(text), "max_length": self.max_length},
                )
        shortest = overlap_length(self.prefix, self.ends_with)
        if shortest > self.max_length:
            raise PydanticCustomError(
                "prefix_and_ending_too_long",
                "no name of at most max_length ({max_length}) characters starts with prefix "
                "and ends with ends_with: that takes {shortest}",
                {"field": "ends_with", "shortest": shortest, "max_length": self.max_length},
            )
        return self

    @property
    def implied_contains(self) -> bool:
        """`contains` is empty, or inside `prefix` or `ends_with`: every name that meets
        those meets it."""
        text = self.contains
        return not text or text in self.prefix or text in self.ends_with

    @property
    def rejects(self) -> bool:
        """Some names the sampler draws may fail a text constraint it does not fix."""
        if not self.implied_contains:
            return bool(self.prefix or self.ends_with)
        return bool(self.prefix and self.ends_with)

    @property
    def backward(self) -> bool:
        """The request needs the backward network (`ends_with` or `contains`)."""
        return bool(self.ends_with or self.contains)

    @property
    def filtered(self) -> bool:
        """Names may be rejected, so sampling goes in rounds within a budget."""
        return self.exclude_existing or self.unique or self.rejects


@dataclass(frozen=True)
class GeneratedName:
    name: str
    logprob: float  # under the model at temperature 1, end token included
    in_corpus: bool


@dataclass(frozen=True)
class GenerateResult:
    names: list[GeneratedName]
    complete: bool  # all n names found
    sampled: int  # names sampled in all, rejected ones included
    seed: int
    stopped: StopReason | None = None  # why not complete

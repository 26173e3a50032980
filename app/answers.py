"""JSON answers too large to build on the event loop.

A 1,000-name /score answer is 65,000 character probabilities: validating it through
pydantic took 0.7 s on a busy 2-core machine, and the event loop, which every other
request needs, stood still meanwhile (a single C call never lets another thread in).
Large answers are built here instead: from plain values we made ourselves (nothing to
validate), encoded by the standard library a few hundred items at a time, in a thread,
so that the event loop gets its turns between the pieces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

INLINE_VALUES = 3_000  # answers of up to this many values are built on the event loop
PIECE = 200  # items encoded per call


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode(body: dict[str, Any], items: str) -> bytes:
    """`body` as JSON, its list `items` encoded a piece at a time."""
    values = body[items]
    pieces = [_dumps(values[i : i + PIECE])[1:-1] for i in range(0, len(values), PIECE)]
    rest = _dumps({k: v for k, v in body.items() if k != items})[1:]
    return f'{{"{items}":[{",".join(pieces)}]{"," if rest != "}" else ""}{rest}'.encode()


async def json_answer(build: Callable[[], dict[str, Any]], items: str, values: int) -> Response:
    """The JSON answer that `build` makes (a dict of plain values, about `values` of them,
    most in its list `items`), built in a thread when it is large."""

    def answer() -> Response:
        return Response(encode(build(), items), media_type="application/json")

    return answer() if values <= INLINE_VALUES else await run_in_threadpool(answer)


def json_response(body: BaseModel) -> Response:
    """`body` as JSON, straight from pydantic. The routes keep `response_model` for the
    schema; returning the model itself would have FastAPI dump, re-validate and encode it
    again on every request."""
    return Response(body.model_dump_json(), media_type="application/json")

"""One JSON error shape for every error: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("namegen")

# The 429 of a full queue, from the middleware that sheds load and from the worker alike.
BUSY_MESSAGE = "the server is busy: retry shortly"
BUSY_HEADERS = {"Retry-After": "1"}

CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    499: "client_closed_request",
    503: "unavailable",
    504: "timeout",
}


def error_response(
    status: int,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {"code": CODES.get(status, "error"), "message": message, "details": details or []}
    }
    return JSONResponse(body, status_code=status, headers=headers)


MAX_SUMMARY = 5  # problems spelled out in the message; `details` holds them all


def invalid_fields(problems: Sequence[tuple[str, str]], status: int = 422) -> JSONResponse:
    """One error for every problem found, each a (field, message) pair."""
    summary = "; ".join(
        message if message.startswith(field + " ") else f"{field}: {message}"
        for field, message in problems[:MAX_SUMMARY]
    )
    if len(problems) > MAX_SUMMARY:
        summary += f"; and {len(problems) - MAX_SUMMARY} more"
    details = [{"field": field, "message": message} for field, message in problems]
    return error_response(status, summary or "invalid request", details)


def _problem(err: Mapping[str, Any]) -> tuple[str, str]:
    """(field, message) of one pydantic error of a request body."""
    loc, ctx = tuple(err["loc"]), err.get("ctx") or {}
    if err["type"] == "json_invalid":  # its location is ("body", character offset)
        position = f" at character {loc[-1]}" if len(loc) > 1 else ""
        return "body", f"invalid JSON{position}: {ctx.get('error', 'cannot parse')}"
    # errors of a whole-model validator name their field in the context
    field = ctx.get("field") or ".".join(str(p) for p in loc if p != "body") or "body"
    return str(field), str(err["msg"])


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return invalid_fields([_problem(err) for err in exc.errors()])


async def http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


class FieldErrors(Exception):
    """Request fields that passed schema validation but are still unusable (a character
    outside the vocabulary, a size above a configured limit): every one found."""

    def __init__(self, problems: Sequence[tuple[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems, self.status = list(problems), status


class FieldError(FieldErrors):
    """One unusable field."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__([(field, message)], status)


async def field_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldErrors)
    return invalid_fields(exc.problems, exc.status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(HTTPException, http_handler)
    app.add_exception_handler(FieldErrors, field_error_handler)
    app.add_exception_handler(Exception, unhandled_handler)

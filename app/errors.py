"""One JSON error shape for every error: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping

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


def field_error(field: str, message: str, status: int = 422) -> JSONResponse:
    return error_response(status, f"{field}: {message}", [{"field": field, "message": message}])


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


async def validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        message = err["msg"]
        if err["type"] == "json_invalid":
            message = f"invalid JSON: {err.get('ctx', {}).get('error', 'cannot parse')}"
        details.append({"field": _location(tuple(err["loc"])), "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return error_response(422, summary or "invalid request", details)


async def http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


class FieldError(Exception):
    """A request field that passed schema validation but is still unusable (a character
    outside the vocabulary, a size above a configured limit)."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


async def field_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldError)
    return field_error(exc.field, exc.message, exc.status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_exception_handler(HTTPException, http_handler)
    app.add_exception_handler(FieldError, field_error_handler)
    app.add_exception_handler(Exception, unhandled_handler)

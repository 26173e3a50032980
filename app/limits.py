"""Request bodies: 415 for a body that is not JSON; 413 before reading a body that says
it is too large, and as soon as a body without a length passes the limit. And admission:
429 for work that could not be served in time, before it is routed."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BUSY_MESSAGE, error_response
from app.jobs import Overloaded
from app.service import Service
from model.request import GenerateRequest
from model.runs import generate_work, score_work

JSON_PATHS = ("/generate", "/score", "/infer")  # the routes that take a JSON body
NOT_JSON = "the request body must be JSON, sent with Content-Type: application/json"


def is_json(content_type: bytes) -> bool:
    """application/json or a +json type, whatever its parameters (charset=...)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class BodyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        has_body = (length is not None and length != b"0") or b"transfer-encoding" in headers
        if has_body and scope["method"] == "POST" and scope["path"] in JSON_PATHS:
            content_type = headers.get(b"content-type")
            if content_type is None or not is_json(content_type):
                given = "none" if content_type is None else repr(content_type.decode("latin-1"))
                await error_response(415, f"{NOT_JSON} (Content-Type: {given})")(
                    scope, receive, send
                )
                return
        limit: int = scope["app"].state.settings.max_body_bytes
        too_large = f"request body is larger than {limit} bytes"
        if length is not None and (not length.isdigit() or int(length) > limit):
            await error_response(413, too_large)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited_receive, send)


class AdmissionMiddleware:
    """Work that cannot be served in time answers 429 (with Retry-After) before it is
    routed or validated, so refusing costs next to nothing even under a flood: the body
    (small, and needed anyway) is read and its work estimated here. A body that does not
    parse goes on, to be refused with its reasons. (The worker's own check, on the
    validated request, stays the authority.)"""

    PATHS = ("/generate", "/score")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = scope["app"].state.service if scope["type"] == "http" else None
        if service is None or scope["method"] != "POST" or scope["path"] not in self.PATHS:
            await self.app(scope, receive, send)
            return
        worker, settings = service.worker, service.settings
        try:
            if worker.depth >= settings.max_queue:  # before reading anything
                raise Overloaded
            body = await _read_body(receive)
            if body is None:  # the client left
                return
            seconds = _seconds(service, scope["path"], body)
            if seconds is not None:
                score = scope["path"] == "/score"
                worker.admit(seconds, score, settings.request_timeout_s)
        except Overloaded as e:
            service.metrics.rejected.inc()
            headers = {"Retry-After": str(e.retry_after)}
            await error_response(429, BUSY_MESSAGE, headers=headers)(scope, receive, send)
            return
        except HTTPException as e:  # the body was too large (BodyMiddleware)
            await error_response(e.status_code, str(e.detail))(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _seconds(service: Service, path: str, body: bytes) -> float | None:
    """The model's time the request's body asks for, or None when it does not parse."""
    scheduler = service.worker.scheduler
    try:
        if path == "/generate":
            req = GenerateRequest.model_validate_json(body)
            return scheduler.generate_seconds(generate_work(req, service.engine.mean_length))
        names = json.loads(body).get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None
        return scheduler.score_seconds(score_work([n.strip() for n in names]))
    except (ValueError, AttributeError):  # pydantic's ValidationError is a ValueError
        return None

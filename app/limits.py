"""Request bodies: 415 for a body that is not JSON; 413 before reading a body that says
it is too large, and as soon as a body without a length passes the limit. And load
shedding: 429 before reading anything when the inference queue is full."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BUSY_HEADERS, BUSY_MESSAGE, error_response

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


class ShedLoadMiddleware:
    """A full inference queue answers 429 before the request's body is read or validated,
    so refusing costs next to nothing even when the server is saturated. (The worker's own
    check stays the authority: the queue can fill between here and there.)"""

    PATHS = JSON_PATHS

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.PATHS:
            service = scope["app"].state.service  # None until the model is loaded
            if service is not None and service.worker.depth >= service.settings.max_queue:
                service.metrics.rejected.inc()
                await error_response(429, BUSY_MESSAGE, headers=BUSY_HEADERS)(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""Request body size limit: 413 before reading a body that says it is too large, and as
soon as a body without a length passes the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BUSY_HEADERS, BUSY_MESSAGE, error_response


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = scope["app"].state.settings.max_body_bytes
        too_large = f"request body is larger than {limit} bytes"
        length = dict(scope["headers"]).get(b"content-length")
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

    PATHS = ("/generate", "/score")

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

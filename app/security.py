"""Access control: optional API keys, and CORS origins from settings."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from fastapi.security import APIKeyHeader
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings


class ApiKey(APIKeyHeader):
    """The X-API-Key header, or an `Authorization: Bearer` token, checked against the
    keys in settings (none configured: open). One dependency that reads the headers
    itself: it runs on every request, and header parameters cost more to resolve. In the
    OpenAPI schema it is the X-API-Key security scheme."""

    def __init__(self) -> None:
        super().__init__(name="X-API-Key", auto_error=False, scheme_name="APIKey")

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        settings: Settings = request.app.state.settings
        if not settings.api_keys:
            return
        check_api_key(
            request.headers.get("x-api-key"),
            request.headers.get("authorization"),
            settings.api_keys,
        )


require_api_key = ApiKey()


def check_api_key(x_api_key: str | None, authorization: str | None, keys: list[str]) -> None:
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given:
        raise HTTPException(
            401, "missing API key (X-API-Key header)", {"WWW-Authenticate": "Bearer"}
        )
    # compare with every key, in constant time, so timing says nothing about which matched
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.encode())
    if not matched:
        raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})


class SettingsCORSMiddleware:
    """CORS with the origins of the app's settings, which are read at startup; built on
    the first request. No origins configured: no CORS headers at all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.cors is None:
            origins = scope["app"].state.settings.cors_origins
            self.cors = (
                CORSMiddleware(
                    self.app,
                    allow_origins=origins,
                    allow_methods=["GET", "POST"],
                    allow_headers=["content-type", "x-api-key", "authorization"],
                )
                if origins
                else self.app
            )
        await self.cors(scope, receive, send)

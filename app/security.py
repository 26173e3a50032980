"""Access control: optional API keys, and CORS origins from settings."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.deps import SettingsDep


async def require_api_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """With keys configured, the request must carry one (X-API-Key or Bearer)."""
    if not settings.api_keys:
        return
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given:
        raise HTTPException(
            401, "missing API key (X-API-Key header)", {"WWW-Authenticate": "Bearer"}
        )
    # compare with every key, in constant time, so timing says nothing about which matched
    matched = False
    for key in settings.api_keys:
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

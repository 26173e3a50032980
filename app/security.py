"""Access control: optional API keys, and CORS origins from settings."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import error_response

PROTECTED = frozenset({"/generate", "/score", "/infer", "/model"})  # probes and scrapers stay open
API_KEY_SCHEME = "APIKey"  # its name in the OpenAPI schema
API_KEY_SECURITY: dict[str, Any] = {"security": [{API_KEY_SCHEME: []}]}  # a route's openapi_extra


class ApiKeyMiddleware:
    """With keys configured in settings, the protected paths need one: the X-API-Key
    header or an `Authorization: Bearer` token; 401 otherwise. A middleware rather than
    a route dependency: it runs on every request, and here it costs a set lookup when no
    keys are configured instead of a dependency resolution."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PROTECTED:
            keys: list[str] = scope["app"].state.settings.api_keys
            if keys:
                headers = Headers(scope=scope)
                problem = api_key_problem(
                    headers.get("x-api-key"), headers.get("authorization"), keys
                )
                if problem:
                    refuse = error_response(401, problem, headers={"WWW-Authenticate": "Bearer"})
                    await refuse(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def api_key_problem(x_api_key: str | None, authorization: str | None, keys: list[str]) -> str:
    """What is wrong with the key the request gave ("" when nothing is)."""
    given = x_api_key
    if given is None and authorization and authorization.lower().startswith("bearer "):
        given = authorization[7:].strip()
    if not given:
        return "missing API key (X-API-Key header)"
    # compare with every key, in constant time, so timing says nothing about which matched
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given.encode(), key.encode())
    return "" if matched else "invalid API key"


def document_api_key(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds the API key scheme to an OpenAPI schema (routes opt in with API_KEY_SECURITY)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[API_KEY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "needed only when the server has keys configured; "
        "`Authorization: Bearer <key>` works too",
    }
    return schema


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

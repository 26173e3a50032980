"""Builds the app. `uvicorn app.main:app` serves the shipped checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import errors
from app.config import Settings, get_settings
from app.limits import AdmissionMiddleware, BodyMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.routers import include_routers
from app.security import ApiKeyMiddleware, SettingsCORSMiddleware, document_api_key
from app.service import start_service


def create_app(settings: Settings | None = None) -> FastAPI:
    """Settings are read when the app starts (lifespan), not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings or get_settings()
        app.state.service = start_service(app.state.settings, app.state.metrics)
        # the schema now rather than on a request: building it takes a while, and the
        # metrics of requests refused before routing look their paths up in it
        app.openapi()
        yield
        await app.state.service.worker.stop()  # uvicorn has let in-flight requests finish
        app.state.service = None

    app = FastAPI(
        title="namegen",
        summary="Name generation with a character-level WaveNet",
        version="0.1.0",
        lifespan=lifespan,
        # Prometheus metrics are our own (/metrics); FastAPI's OpenTelemetry hooks would
        # look up providers and environment variables on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # app/routers/docs.py serves both pages with local assets
        redoc_url=None,
    )
    app.state.settings = settings or Settings.model_construct()  # replaced in lifespan
    app.state.service = None  # the loaded model and its worker, set in lifespan
    app.state.metrics = Metrics()
    errors.install(app)
    # the last added runs first
    app.add_middleware(AdmissionMiddleware)
    app.add_middleware(BodyMiddleware)
    app.add_middleware(ApiKeyMiddleware)  # inside CORS: preflights need no key
    app.add_middleware(SettingsCORSMiddleware)
    # outermost: requests refused before routing (401, 413, 415, 429) count too
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    include_routers(app)
    build_schema = app.openapi
    app.openapi = lambda: document_api_key(build_schema())  # type: ignore[method-assign]
    return app


app = create_app()

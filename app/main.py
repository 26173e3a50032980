"""Builds the app. `uvicorn app.main:app` serves the shipped checkpoint."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI

from app import errors
from app.batching import BatchingWorker
from app.config import Settings, get_settings
from app.deps import Service
from app.limits import BodyLimitMiddleware, ShedLoadMiddleware
from app.metrics import Metrics, MetricsMiddleware
from app.routers import include_routers
from app.security import ApiKeyMiddleware, SettingsCORSMiddleware, document_api_key
from model.checkpoint import CheckpointError
from model.engine import Engine, GenerateRequest

log = logging.getLogger("namegen")
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # one per physical core, before we change it


def create_app(settings: Settings | None = None) -> FastAPI:
    """Settings are read when the app starts (lifespan), not at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings or get_settings()
        s = app.state.settings
        threads = s.torch_threads or TORCH_DEFAULT_THREADS
        large_threads = s.large_batch_threads or TORCH_DEFAULT_THREADS
        torch.set_num_threads(threads)
        sys.setswitchinterval(s.gil_switch_ms / 1000)
        try:
            engine = Engine.load(s.checkpoint, s.device)
        except CheckpointError as e:
            log.error("namegen: cannot start: %s", e)
            raise
        engine.budget_factor = s.budget_factor
        engine.generate(GenerateRequest(n=2, seed=0))  # warm up before taking traffic
        worker = BatchingWorker(
            engine,
            max_queue=s.max_queue,
            window_s=s.batch_window_ms / 1000,
            batching=s.batching,
            threads=threads,
            large_batch_threads=large_threads,
            large_batch_rows=s.large_batch_rows,
        )
        worker.start()
        app.state.service = Service(engine, s, worker, app.state.metrics)
        app.state.metrics.watch_queue(lambda: worker.depth)
        worker.on_batch = app.state.metrics.batch_requests.observe
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's full passes, which would otherwise walk all of torch, pydantic and
        # FastAPI and stall the event loop for tens of milliseconds under load.
        gc.collect()
        gc.freeze()
        yield
        await worker.stop()  # uvicorn has let in-flight requests finish by now
        app.state.service = None

    app = FastAPI(
        title="namegen",
        summary="Name generation with a character-level WaveNet",
        version="0.1.0",
        lifespan=lifespan,
        # Prometheus metrics are our own (/metrics); FastAPI's OpenTelemetry hooks would
        # look up providers and environment variables on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings or Settings.model_construct()  # replaced in lifespan
    app.state.service = None  # the loaded model and its worker, set in lifespan
    app.state.metrics = Metrics()
    errors.install(app)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(ShedLoadMiddleware)
    app.add_middleware(ApiKeyMiddleware)  # inside CORS: preflights need no key
    app.add_middleware(SettingsCORSMiddleware)
    include_routers(app)
    build_schema = app.openapi
    app.openapi = lambda: document_api_key(build_schema())  # type: ignore[method-assign]
    return app


app = create_app()

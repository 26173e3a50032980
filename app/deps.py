"""Typed dependencies: the engine loaded in lifespan, and the settings."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request

from app.batching import BatchingWorker, Overloaded, TimedOut
from app.config import Settings
from model.engine import Engine


# Dependencies are `async def`: FastAPI runs plain `def` ones in the threadpool, a thread
# hop per dependency per request for work that never blocks.
async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def run_job(
    request: Request, kind: Literal["generate", "score"], payload: Any, rows: int
) -> Any:
    """Queue work for the inference worker and wait for it, unless the client leaves:
    429 (with Retry-After) when the queue is full, 504 past the time limit."""
    worker: BatchingWorker = request.app.state.worker
    settings: Settings = request.app.state.settings
    metrics = request.app.state.metrics
    work = asyncio.ensure_future(worker.submit(kind, payload, rows, settings.request_timeout_s))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not work.done():  # the client went away: drop its queued work
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        metrics.dropped.inc()
        raise HTTPException(499, "client closed the request")
    try:
        return work.result()
    except Overloaded as e:
        metrics.rejected.inc()
        raise HTTPException(429, "the server is busy: retry shortly", {"Retry-After": "1"}) from e
    except TimedOut as e:
        metrics.timeouts.inc()
        raise HTTPException(504, f"not done within {settings.request_timeout_s:g}s") from e


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return

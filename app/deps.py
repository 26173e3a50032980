"""The typed dependency the handlers reach the model through (the `Service` that lifespan
builds), and the request-to-worker plumbing."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request

from app.errors import BUSY_MESSAGE
from app.jobs import ClientGone, Job, Overloaded, TimedOut
from app.service import Service

R = TypeVar("R")


# One dependency for everything, and `async def`: FastAPI runs plain `def` dependencies
# in the threadpool, and each dependency costs its resolution on every request.
async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def run_job(service: Service, request: Request, job: Job[R]) -> R:
    """Hand `job` to the inference worker and wait for its result, unless the client
    leaves: 429 (with Retry-After) for work that could not be done in time, 504 for work
    that was not (a /generate returns what it found instead)."""
    worker, settings, metrics = service.worker, service.settings, service.metrics
    try:
        worker.submit(job, settings.request_timeout_s)
    except Overloaded as e:
        metrics.rejected.inc()
        raise HTTPException(429, BUSY_MESSAGE, {"Retry-After": str(e.retry_after)}) from e
    watch = asyncio.get_running_loop().create_task(_fail_on_disconnect(request, job))
    try:
        return await job.future
    except TimedOut as e:
        metrics.timeouts.inc()
        raise HTTPException(504, f"not done within {settings.request_timeout_s:g}s") from e
    except ClientGone as e:  # its queued work has been dropped
        metrics.dropped.inc()
        raise HTTPException(499, "client closed the request") from e
    finally:
        watch.cancel()
        worker.release(job)


async def _fail_on_disconnect(request: Request, job: Job[Any]) -> None:
    """Ends `job` with ClientGone when the client disconnects (the body has been read by
    then, so the next message can only be the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.fail(ClientGone())
            return

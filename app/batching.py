"""One inference worker that merges concurrent requests into shared model batches.

Handlers `submit()` work and await its result. The worker takes everything queued (after
waiting `window_s` for company when it finds a lone job), runs the /generate jobs as one
`Engine.generate_many` and the /score jobs as one `Engine.score_many`, and hands each
request its part. Model calls happen one at a time (two would only fight over the same
cores); tiny batches run right on the event loop, where a thread hop would cost more
than the work, larger ones in a thread so the loop keeps accepting requests meanwhile.

Back-pressure: the queue is bounded. A full queue refuses at once (`Overloaded`, 429), a
job that waits longer than its time limit is dropped (`TimedOut`, 504), and a job whose
client went away is dropped before it costs anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from starlette.concurrency import run_in_threadpool

from model.engine import Engine, GenerateRequest, GenerateResult, ScoredName

log = logging.getLogger("namegen")

INLINE_ROWS = 64  # batches this small run on the event loop


class Overloaded(Exception):
    """The queue is full: come back later."""


class TimedOut(Exception):
    """The job did not finish within its time limit."""


class ClientGone(Exception):
    """The client disconnected before its job ran."""


@dataclass
class Job:
    kind: Literal["generate", "score"]
    payload: Any  # GenerateRequest, or a list of names
    future: asyncio.Future[Any]
    rows: int  # names to generate or score: the job's share of a batch
    timer: asyncio.TimerHandle | None = None

    def fail(self, error: Exception) -> None:
        """End the job with `error` unless it has ended already (a job that has ended is
        skipped by the worker)."""
        if not self.future.done():
            self.future.set_exception(error)


class BatchingWorker:
    def __init__(
        self,
        engine: Engine,
        *,
        max_queue: int,
        window_s: float,
        batching: bool = True,
        max_batch_rows: int = 20_000,
        threads: int = 1,
        large_batch_threads: int = 1,
        large_batch_rows: int = 1_000,
    ) -> None:
        self.engine = engine
        # torch intra-op threads: few for small batches, whose ops are too short to share
        # out (idle threads would spin on the cores the event loop needs), more for large
        # ones. Set on the thread that runs the batch: the setting is per thread.
        self.threads, self.large_batch_threads = threads, large_batch_threads
        self.large_batch_rows = large_batch_rows
        self.max_queue, self.window_s, self.batching = max_queue, window_s, batching
        self.max_batch_rows = max_batch_rows
        self.queue: list[Job] = []
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.on_batch: Callable[[int], None] = lambda requests: None  # for metrics

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="inference")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    @property
    def depth(self) -> int:
        return len(self.queue)

    def submit(
        self, kind: Literal["generate", "score"], payload: Any, rows: int, timeout_s: float
    ) -> Job:
        """Queue a job: `job.future` gets its result, or TimedOut after `timeout_s`.
        Raises Overloaded when the queue is full. The caller awaits the future and then
        calls `release(job)`, whatever happened.

        (A plain future, a timer and no extra task: this runs for every request, and
        asyncio.wait_for and shield would each cost another task per request.)"""
        if len(self.queue) >= self.max_queue:
            raise Overloaded
        loop = asyncio.get_running_loop()
        job = Job(kind, payload, loop.create_future(), rows)
        job.timer = loop.call_later(timeout_s, job.fail, TimedOut())
        self.queue.append(job)
        self.wakeup.set()
        return job

    def release(self, job: Job) -> None:
        """The caller is done with `job`: a job still queued is dropped."""
        if job.timer is not None:
            job.timer.cancel()
        job.future.cancel()  # no-op once it has a result
        with contextlib.suppress(ValueError):
            self.queue.remove(job)

    async def _run(self) -> None:
        while True:
            await self.wakeup.wait()
            if self.batching and len(self.queue) == 1 and self.window_s > 0:
                await asyncio.sleep(self.window_s)  # a lone job waits briefly for company
            self.wakeup.clear()
            batch = self._take()
            if not batch:
                continue
            self.wakeup.set()  # whatever is left goes next
            try:
                await self._execute(batch)
            except Exception:  # a bug must not kill the worker; the jobs get a 500
                log.exception("inference batch failed")
                for job in batch:
                    job.fail(RuntimeError("inference failed"))

    def _take(self) -> list[Job]:
        """The next batch: queued jobs still awaited, up to max_batch_rows (at least one)."""
        self.queue = [job for job in self.queue if not job.future.done()]
        if not self.batching:
            return [self.queue.pop(0)] if self.queue else []
        batch: list[Job] = []
        rows = 0
        while self.queue and (not batch or rows + self.queue[0].rows <= self.max_batch_rows):
            job = self.queue.pop(0)
            batch.append(job)
            rows += job.rows
        return batch

    async def _execute(self, batch: list[Job]) -> None:
        generate = [job for job in batch if job.kind == "generate"]
        score = [job for job in batch if job.kind == "score"]
        rows = sum(job.rows for job in batch)
        self.on_batch(len(batch))
        threads = self.large_batch_threads if rows >= self.large_batch_rows else self.threads
        if rows <= INLINE_ROWS:
            results = self._compute(generate, score, threads)
        else:
            results = await run_in_threadpool(self._compute, generate, score, threads)
        for job, result in zip(generate + score, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    def _compute(self, generate: Sequence[Job], score: Sequence[Job], threads: int) -> list[Any]:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        out: list[Any] = []
        if generate:
            reqs: list[GenerateRequest] = [job.payload for job in generate]
            results: list[GenerateResult] = self.engine.generate_many(reqs)
            out.extend(results)
        if score:
            scored: list[list[ScoredName]] = self.engine.score_many([job.payload for job in score])
            out.extend(scored)
        return out

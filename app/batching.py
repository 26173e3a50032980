"""One inference worker that merges concurrent requests into shared model batches.

Handlers `submit()` a typed job (`GenerateJob`, `ScoreJob`) and await its future. The
worker takes everything queued (after waiting `window_s` for company when it finds a lone
job), runs the /generate jobs as one `Engine.generate_many` and the /score jobs as one
`Engine.score_many`, and hands each job its part. Model calls happen one at a time (two
would only fight over the same cores); tiny batches run right on the event loop, where a
thread hop would cost more than the work, larger ones in a thread so the loop keeps
accepting requests meanwhile.

Back-pressure: the queue is bounded. A full queue refuses at once (`Overloaded`, 429), a
job that waits longer than its time limit is dropped (`TimedOut`, 504), and a job whose
client went away is dropped before it costs anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from starlette.concurrency import run_in_threadpool

from model.engine import Engine, ScoredName
from model.request import GenerateRequest, GenerateResult

log = logging.getLogger("namegen")

INLINE_ROWS = 64  # batches this small run on the event loop


class Overloaded(Exception):
    """The queue is full: come back later."""


class TimedOut(Exception):
    """The job did not finish within its time limit."""


class ClientGone(Exception):
    """The client disconnected before its job ran."""


R = TypeVar("R")


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)  # a job is itself, whatever its fields: the queue removes it by identity
class Job(Generic[R]):
    """Work for the model; `future` gets its result. Made on the event loop."""

    future: asyncio.Future[R] = field(default_factory=_new_future, init=False)
    timer: asyncio.TimerHandle | None = field(default=None, init=False)

    @property
    def rows(self) -> int:
        """Names to generate or score: the job's share of a batch."""
        raise NotImplementedError

    def fail(self, error: Exception) -> None:
        """End the job with `error` unless it has ended already (a job that has ended is
        skipped by the worker)."""
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(eq=False)
class GenerateJob(Job[GenerateResult]):
    request: GenerateRequest

    @property
    def rows(self) -> int:
        return self.request.n


@dataclass(eq=False)
class ScoreJob(Job[list[ScoredName]]):
    names: list[str]  # trimmed, lowercased, in the vocabulary

    @property
    def rows(self) -> int:
        return len(self.names)


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
        self.queue: list[Job[Any]] = []
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

    def submit(self, job: Job[R], timeout_s: float) -> None:
        """Queue a job: `job.future` gets its result, or TimedOut after `timeout_s`.
        Raises Overloaded when the queue is full. The caller awaits the future and then
        calls `release(job)`, whatever happened.

        (A plain future, a timer and no extra task: this runs for every request, and
        asyncio.wait_for and shield would each cost another task per request.)"""
        if len(self.queue) >= self.max_queue:
            raise Overloaded
        job.timer = asyncio.get_running_loop().call_later(timeout_s, job.fail, TimedOut())
        self.queue.append(job)
        self.wakeup.set()

    def release(self, job: Job[Any]) -> None:
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

    def _take(self) -> list[Job[Any]]:
        """The next batch: queued jobs still awaited, up to max_batch_rows (at least one)."""
        self.queue = [job for job in self.queue if not job.future.done()]
        if not self.batching:
            return [self.queue.pop(0)] if self.queue else []
        batch: list[Job[Any]] = []
        rows = 0
        while self.queue and (not batch or rows + self.queue[0].rows <= self.max_batch_rows):
            job = self.queue.pop(0)
            batch.append(job)
            rows += job.rows
        return batch

    async def _execute(self, batch: list[Job[Any]]) -> None:
        generate = [job for job in batch if isinstance(job, GenerateJob)]
        score = [job for job in batch if isinstance(job, ScoreJob)]
        rows = sum(job.rows for job in batch)
        self.on_batch(len(batch))
        threads = self.large_batch_threads if rows >= self.large_batch_rows else self.threads
        if rows <= INLINE_ROWS:
            generated, scored = self._compute(generate, score, threads)
        else:
            generated, scored = await run_in_threadpool(self._compute, generate, score, threads)
        _resolve(generate, generated)
        _resolve(score, scored)

    def _compute(
        self, generate: Sequence[GenerateJob], score: Sequence[ScoreJob], threads: int
    ) -> tuple[list[GenerateResult], list[list[ScoredName]]]:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        generated = self.engine.generate_many([job.request for job in generate]) if generate else []
        scored = self.engine.score_many([job.names for job in score]) if score else []
        return generated, scored


def _resolve(jobs: Sequence[Job[R]], results: Sequence[R]) -> None:
    for job, result in zip(jobs, results, strict=True):
        if not job.future.done():  # timed out or its client left meanwhile
            job.future.set_result(result)

"""One inference thread that serves every request through continuous batching
(model/scheduler.py): each step advances the rows of every admitted /generate request
together, new requests join at the next step, and /score work runs between steps in
pieces of bounded size.

Handlers `submit()` a typed job (`GenerateJob`, `ScoreJob`) and await its future; the
thread hands results back to the event loop. The loop itself runs the model only for
tiny work that finds the thread idle (`INLINE_ROW_STEPS`): handing a request of one name
to the thread and back cost more than its work (about 1 ms of a 5 ms request), and with
nothing else running there is nobody to keep waiting. Everything else goes to the thread,
so the loop keeps accepting, refusing and answering requests while the model works.

Admission is by work, not by count: each job carries an estimate of its row-steps, and a
job that could not finish within its time limit, given the work already admitted and the
measured speed, is refused at once (`Overloaded`, 429 with Retry-After). Admitted work
shares the model fairly (processor sharing, roughly), so the estimate of a job's time is
the sum over admitted jobs of min(their remaining work, its work), plus its own. A
/generate that runs out of time anyway returns the names it found (`stopped: "time"`);
a /score cannot: it answers when done, or gets `TimedOut` (504) at twice its limit. A
job whose client went away is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from app.jobs import Job, Overloaded, TimedOut
from model.engine import Engine
from model.request import GenerateRequest
from model.runs import GenerateRun, ScoreRun
from model.scheduler import Scheduler
from model.speed import Speed

log = logging.getLogger("namegen")

# A /generate out of time answers with what it found; a /score has nothing to show until
# it is done, so one admitted when the machine was faster than it is now (a flood of
# large requests slows it down by itself) answers late, up to twice its time limit, and
# only then gets TimedOut.
HARD_STOP_S = 10.0  # past its limit, a /generate that never answered gets TimedOut
# Work the event loop runs itself when the thread is idle (row-steps or score positions
# of all such jobs together): a few names, a few milliseconds at most
INLINE_ROW_STEPS = 128


class BatchingWorker:
    def __init__(
        self,
        engine: Engine,
        *,
        max_queue: int,
        window_s: float = 0.0,
        batching: bool = True,
        max_rows: int = 1024,
        step_s: float | None = None,
        lone_step_s: float | None = None,
        threads: int = 1,
        large_batch_threads: int = 1,
        large_batch_rows: int = 1_000,
        admit_fraction: float = 0.7,
    ) -> None:
        self.engine = engine
        self.scheduler = Scheduler(
            engine,
            max_rows=max_rows,
            step_s=step_s,
            lone_step_s=lone_step_s,
            max_runs=None if batching else 1,
        )
        # torch intra-op threads: few for small steps, whose ops are too short to share
        # out, more for large ones (set on the inference thread: the setting is per thread)
        self.threads, self.large_batch_threads = threads, large_batch_threads
        self.large_batch_rows = large_batch_rows
        self.max_queue, self.window_s = max_queue, window_s
        # admit work expected to be done within this share of the time limit (the rest
        # is the estimate's margin)
        self.admit_fraction = admit_fraction
        self.jobs: set[Job[Any]] = set()  # admitted and not yet released (event loop's)
        self.inbox: list[Job[Any]] = []  # submitted, not yet seen by the thread
        self.wakeup = threading.Condition()
        # the thread waits for work: set under `wakeup`; `submit` reads it as a hint, which
        # `_run_inline` checks again under the lock
        self.idle = False
        # tiny jobs the loop runs itself, with a scheduler of its own (see _run_inline)
        self.inline: list[Job[Any]] = []
        self.inline_scheduler = self._new_inline_scheduler()
        self.inline_enabled = batching
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_step: Callable[[int], None] = lambda requests: None  # for metrics

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread = threading.Thread(target=self._serve, name="inference", daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        with self.wakeup:
            self.stopping = True
            self.wakeup.notify()
        if self.thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.thread.join)

    def warm_up(self) -> None:
        """Run a few requests through the scheduler (before start), twice: the first
        steps are slow (allocation, caches), so the first pass only warms up, and the
        second measures the model's speed, for admission and the step's size."""
        for measure in (False, True):
            if measure:
                self.scheduler.speed = Speed()
            for run in self._warm_up_runs():
                self.scheduler.add(run)
                while len(self.scheduler):
                    self.scheduler.step(self._set_threads)
        for _ in range(2):  # and the loop's own scheduler, for tiny jobs
            self.inline_scheduler.add(GenerateRun(self.engine, GenerateRequest(n=1, seed=0)))
            while len(self.inline_scheduler):
                self.inline_scheduler.step()

    def _warm_up_runs(self) -> list[GenerateRun | ScoreRun]:
        full = self.scheduler.max_rows or 1024
        runs: list[GenerateRun | ScoreRun] = [
            GenerateRun(self.engine, GenerateRequest(n=n, seed=0)) for n in (1, 1, full, full, 1)
        ]
        long_name, short_name = self.engine.vocab.chars[-1] * 32, self.engine.vocab.chars[-1]
        if self.engine.backward is not None:  # its first steps too
            ending = self.engine.vocab.chars[-1]
            runs += [
                GenerateRun(self.engine, GenerateRequest(n=n, seed=0, ends_with=ending))
                for n in (1, full)
            ]
        runs += [ScoreRun(self.engine, [short_name]) for _ in range(3)]  # the overhead
        runs += [ScoreRun(self.engine, [long_name] * 64) for _ in range(2)]
        return runs

    @property
    def depth(self) -> int:
        return len(self.jobs)

    def admit(self, seconds: float, score: bool, time_limit_s: float) -> None:
        """Raises Overloaded when generate (or score) work that takes the model `seconds`
        could not be done within the time limit, with the work admitted so far."""
        if len(self.jobs) >= self.max_queue:
            raise Overloaded
        expected = self.expected_s(seconds, score)
        allowed = time_limit_s * self.admit_fraction
        if expected > allowed:
            raise Overloaded(max(1, math.ceil(expected - allowed)))

    def expected_s(self, seconds: float, score: bool) -> float:
        """How long generate (or score) work that takes the model `seconds` would take,
        sharing the model with the work admitted so far: with the requests of its kind,
        as processor sharing does (each of those costs it the smaller of its remaining
        time and its own), within its kind's share of the model."""
        shared = seconds
        for job in self.jobs:
            other = job.run
            if other is not None and isinstance(other, ScoreRun) == score:
                shared += min(max(other.seconds - other.seconds_done, 0.0), seconds)
        return shared / self.scheduler.share(score)

    def submit(self, job: Job[Any], time_limit_s: float) -> None:
        """Queue a job: `job.future` gets its result. Raises Overloaded when it cannot be
        served in time. The caller awaits the future and then calls `release(job)`,
        whatever happened."""
        loop = asyncio.get_running_loop()
        run = job.make_run(self.engine, time.monotonic() + time_limit_s)
        self.admit(self.scheduler.estimate(run), isinstance(run, ScoreRun), time_limit_s)
        job.run = run
        grace = time_limit_s if isinstance(run, ScoreRun) else HARD_STOP_S
        job.timer = loop.call_later(time_limit_s + grace, job.fail, TimedOut())
        self.jobs.add(job)
        tiny = self._inline_units() + run.units <= INLINE_ROW_STEPS
        if self.inline_enabled and self.idle and tiny:
            self.inline.append(job)
            if len(self.inline) == 1:  # after the handlers that run now: they may add more
                loop.call_soon(self._run_inline)
            return
        with self.wakeup:
            self.inbox.append(job)
            self.wakeup.notify()

    def _inline_units(self) -> float:
        return sum(job.run.units for job in self.inline if job.run is not None)

    def _new_inline_scheduler(self) -> Scheduler:
        return Scheduler(self.engine, max_rows=self.scheduler.max_rows, step_s=None)

    def _run_inline(self) -> None:
        """Run the tiny jobs gathered on the loop, unless the thread got work meanwhile
        (then it takes them). The thread stays in its wait throughout: only the loop,
        busy here, hands it work."""
        jobs, self.inline = self.inline, []
        with self.wakeup:
            if not (self.idle and not self.inbox and not self.stopping):
                self.inbox += jobs
                self.wakeup.notify()
                return
        scheduler, owners = self.inline_scheduler, {}
        for job in jobs:
            if job.run is not None and not job.future.done():
                owners[id(job.run)] = job
                scheduler.add(job.run)
        if any(isinstance(job.run, GenerateRun) for job in owners.values()):
            self.scheduler.generated_at = time.monotonic()  # for the thread's admission
        try:
            while len(scheduler):
                for run in scheduler.step():
                    if id(run) in owners:
                        _resolve(owners.pop(id(run)), run)
                if scheduler.runs:
                    self.on_step(len(scheduler.runs))
        except Exception:  # a bug must not stop the loop; these jobs get a 500
            log.exception("inline inference step failed")
            for job in owners.values():
                job.fail(RuntimeError("inference failed"))
            self.inline_scheduler = self._new_inline_scheduler()

    def release(self, job: Job[Any]) -> None:
        """The caller is done with `job`: unfinished work is dropped."""
        if job.timer is not None:
            job.timer.cancel()
        if job.run is not None and not job.future.done():
            job.run.cancelled = True
        job.future.cancel()  # no-op once it has a result
        self.jobs.discard(job)

    # -- the inference thread ----------------------------------------------------------

    def _serve(self) -> None:
        owners: dict[int, Job[Any]] = {}  # by id of the run
        scheduler = self.scheduler
        while True:
            with self.wakeup:
                while not (self.inbox or len(scheduler) or self.stopping):
                    self.idle = True
                    self.wakeup.wait()
                self.idle = False
                if self.stopping:
                    return
                lone = len(self.inbox) == 1 and not len(scheduler)
            if lone and self.window_s > 0:
                time.sleep(self.window_s)  # a lone job waits briefly for company
            with self.wakeup:
                new, self.inbox = self.inbox, []
            for job in new:
                if job.run is not None:
                    owners[id(job.run)] = job
                    scheduler.add(job.run)
            try:
                finished = scheduler.step(self._set_threads)
            except Exception:  # a bug must not kill the worker; its jobs get a 500
                log.exception("inference step failed")
                finished = [*scheduler.runs, *scheduler.waiting]
                fresh = Scheduler(
                    self.engine,
                    max_rows=scheduler.max_rows,
                    step_s=scheduler.step_s,
                    lone_step_s=scheduler.lone_step_s,
                    max_runs=scheduler.max_runs,
                )
                fresh.speed = scheduler.speed
                self.scheduler = scheduler = fresh
                for run in finished:
                    run.failed = True
            if scheduler.runs:
                self.on_step(len(scheduler.runs))
            for run in finished:
                if id(run) in owners and self.loop is not None:
                    self.loop.call_soon_threadsafe(_resolve, owners.pop(id(run)), run)
            for key in [k for k, job in owners.items() if job.run and job.run.cancelled]:
                del owners[key]

    def _set_threads(self, rows: int) -> None:
        threads = self.large_batch_threads if rows >= self.large_batch_rows else self.threads
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _resolve(job: Job[Any], run: GenerateRun | ScoreRun) -> None:
    if job.future.done():  # timed out or its client left meanwhile
        return
    if run.failed:
        job.future.set_exception(RuntimeError("inference failed"))
    elif isinstance(run, ScoreRun) and run.timed_out:
        job.future.set_exception(TimedOut())
    else:
        job.future.set_result(run.result())

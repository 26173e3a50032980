"""Continuous batching: every admitted request advances one step at a time, together.

Generate requests (model/runs.py) run as jobs in one Batch (model/sampling.py); jobs
start while a step has room, fairly: requests with the fewest rows running go first, so a
one-name request joins at the next step however large the others are. A step's room is
what fits in a time (`step_s`) at the speed measured. A score request runs between steps,
a piece at a time, its pieces bounded by the same room. Both keep a count of the work
done for them (row-steps), for admission.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from model.runs import GenerateRun, ScoreRun
from model.sampling import Batch, SampleJob

if TYPE_CHECKING:
    from model.engine import Engine


class Speed:
    """A step's time as overhead + rows * per_row, learnt from the steps run (moving
    averages: the machine's load changes)."""

    def __init__(self) -> None:
        self.overhead = 0.0  # seconds a step costs whatever its rows
        self.per_row = 0.0  # and each row; 0 until measured

    def observe(self, rows: int, seconds: float) -> None:
        if rows <= 4:  # the overhead is most of it
            self.overhead = seconds if not self.overhead else 0.9 * self.overhead + 0.1 * seconds
        elif rows >= 48:
            per_row = max(seconds - self.overhead, seconds / 4) / rows
            self.per_row = per_row if not self.per_row else 0.9 * self.per_row + 0.1 * per_row

    def rows_within(self, seconds: float) -> int:
        """How many rows a step of `seconds` can run (64 at least)."""
        if not self.per_row:
            return 1 << 30
        return max(64, int((seconds - self.overhead) / self.per_row))


class Scheduler:
    """Runs generate and score requests together, a step at a time (see the module's
    docstring). A step runs at most `max_rows` rows (None: no limit), and no more than
    fit in `step_s` seconds at the speed measured (None: no limit): that bounds how long
    a short request waits on each step. `max_runs`: the most requests served at once,
    the others waiting in order (None: no limit)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_rows: int | None = None,
        step_s: float | None = None,
        max_runs: int | None = None,
    ) -> None:
        self.engine, self.max_runs = engine, max_runs
        self.max_rows, self.step_s = max_rows, step_s
        self.batch = Batch(engine.net)
        self.runs: list[GenerateRun | ScoreRun] = []  # being served, oldest first
        self.waiting: deque[GenerateRun | ScoreRun] = deque()
        self.jobs: dict[int, tuple[GenerateRun, int]] = {}  # batch handle: run, job index
        self.speed = Speed()

    @property
    def limit(self) -> int | None:
        """The most rows a step runs now."""
        if self.step_s is None:
            return self.max_rows
        rows = self.speed.rows_within(self.step_s)
        return rows if self.max_rows is None else min(rows, self.max_rows)

    @property
    def row_seconds(self) -> float:
        """Seconds per row-step of full steps: how fast work gets done."""
        rows, speed = self.limit or 1024, self.speed
        return (speed.overhead + speed.per_row * rows) / rows

    def __len__(self) -> int:
        return len(self.runs) + len(self.waiting)

    def add(self, run: GenerateRun | ScoreRun) -> None:
        self.waiting.append(run)

    @torch.inference_mode()
    def step(self, before: Callable[[int], None] | None = None) -> list[GenerateRun | ScoreRun]:
        """One step of every running row, and a piece of score work; `before` learns how
        many rows the step runs. Returns the runs that finished (cancelled runs are
        dropped without a word)."""
        started = time.perf_counter()
        finished = self._expire()
        while self.waiting and (self.max_runs is None or len(self.runs) < self.max_runs):
            self.runs.append(self.waiting.popleft())
        scoring = [run for run in self.runs if isinstance(run, ScoreRun)]
        self._start_jobs(reserve=bool(scoring))
        rows = len(self.batch)
        if before is not None:
            before(rows)
        for handle, (run, _) in self.jobs.items():
            run.work_done += self.batch.alive(handle)
        ended = [(*self.jobs.pop(handle), ids, lps) for handle, ids, lps in self.batch.step()]
        for run, index, *_ in ended:
            del run.handles[index]
        for run, index, ids, lps in ended:
            if run in self.runs:
                run.take(index, ids, lps)
                if run.done:
                    finished.append(self._finish(run))
        if scoring:  # the score request served least so far
            score = min(scoring, key=lambda run: run.work_done)
            if not score.done:
                limit = self.limit
                room = 1 << 62 if limit is None else max(limit - rows, limit // 4)
                positions = score.score_piece(room)
                score.work_done += positions
                rows += positions
            if score.done:
                finished.append(self._finish(score))
        if rows:
            self.speed.observe(rows, time.perf_counter() - started)
        return finished

    def _expire(self) -> list[GenerateRun | ScoreRun]:
        """Drop cancelled runs; stop those past their deadline."""
        now, finished = time.monotonic(), []
        for run in [*self.runs, *self.waiting]:
            if run.cancelled:
                self._finish(run)
            elif run.deadline is not None and now >= run.deadline:
                run.timed_out = True
                finished.append(self._finish(run))
        return finished

    def _start_jobs(self, reserve: bool) -> None:
        """Start jobs while there is room, fewest running rows first. With score work
        waiting, generation leaves it a quarter of the rows."""
        limit = self.limit
        if limit is None:
            room = 1 << 62
        else:
            room = limit - len(self.batch) - (limit // 4 if reserve else 0)
        runs = [run for run in self.runs if isinstance(run, GenerateRun) and run.wants_job()]
        running = {id(run): sum(self.batch.alive(h) for h in run.handles.values()) for run in runs}
        runs.sort(key=lambda run: running[id(run)])  # stable: older first among equals
        new: list[tuple[GenerateRun, int, SampleJob]] = []
        while runs:
            for run in runs:
                size = min(run.size, run.budget - run.started * run.size)
                if size <= room or not (new or len(self.batch)):
                    new.append((run, *run.next_job()))
                    room -= size
            runs = [run for run in runs if run.wants_job() and run.size <= room]
        self.batch.reserve(sum(job.n for *_, job in new))
        for run, index, job in new:
            handle = self.batch.add(job)
            run.handles[index] = handle
            self.jobs[handle] = (run, index)

    def _finish(self, run: GenerateRun | ScoreRun) -> GenerateRun | ScoreRun:
        """Take `run` out, with whatever jobs of it still run."""
        if isinstance(run, GenerateRun):
            for handle in run.handles.values():
                self.batch.cancel(handle)
                del self.jobs[handle]
            run.handles.clear()
        if run in self.runs:
            self.runs.remove(run)
        else:
            self.waiting.remove(run)
        return run

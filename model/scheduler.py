"""Continuous batching: every admitted request advances one step at a time, together.

Generate requests (model/runs.py) run as jobs in one Batch (model/sampling.py) per
network (forward, and backward for endings and substrings, both stepped together); jobs
start while a step has room, fairly: requests with the fewest rows running go first, so a
one-name request joins at the next step however large the others are. A step's room is
what fits in a time (`step_s`) at the speed measured, or in a longer one (`lone_step_s`)
while a single request is served: large steps waste less time per row, and nobody waits
on them. When others arrive, the lone request's jobs beyond the room are parked (their
rows keep their state, out of the steps) and resume as room frees. A score request runs
between steps, a piece at a time, its pieces bounded by the same room. Both keep a count
of the work done for them (row-steps), for admission.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from model.constraints import Direction, rescore
from model.jobs import SampleJob
from model.parking import fit_rows, jobs_of
from model.runs import GenerateRun, ScoreRun, score_piece
from model.sampling import Batch
from model.speed import Speed

if TYPE_CHECKING:
    from model.engine import Engine

RECENT_S = 1.0  # generate work seen this recently is expected to go on (see `share`)
UNLIMITED_PIECE = 16_384  # positions of a score piece without a row limit (memory)
# a job that ended: its run, index, network, ids and log-probabilities
Ended = tuple[GenerateRun, int, Direction, list[list[int]], list[float]]


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
        lone_step_s: float | None = None,
        max_runs: int | None = None,
    ) -> None:
        self.engine, self.max_runs = engine, max_runs
        self.max_rows, self.step_s, self.lone_step_s = max_rows, step_s, lone_step_s
        self.batch = Batch(engine.net)  # the forward network's rows
        self.backward = None if engine.backward_net is None else Batch(engine.backward_net)
        self.batches: list[tuple[Direction, Batch]] = [("forward", self.batch)]
        if self.backward is not None:
            self.batches.append(("backward", self.backward))
        self.runs: list[GenerateRun | ScoreRun] = []  # being served, oldest first
        self.waiting: deque[GenerateRun | ScoreRun] = deque()
        # (network, batch handle) of each job running: its run and job index
        self.jobs: dict[tuple[Direction, int], tuple[GenerateRun, int]] = {}
        self.speed = Speed()
        self.generating = self.scoring = 0  # requests of each kind being served
        self.generated_at = -math.inf  # generate work last seen, here or elsewhere: `share`
        self.turn = 0  # of the score requests, whose piece runs next
        self.score_debt = 0.0  # seconds score work took beyond its share of steps

    @property
    def limit(self) -> int | None:
        """The most rows a step runs while several requests are served."""
        return self._rows_within(self.step_s)

    @property
    def alone(self) -> bool:
        """A single request served, none waiting: its steps may be longer."""
        return self.lone_step_s is not None and len(self.runs) == 1 and not self.waiting

    def step_seconds(self) -> float | None:
        """The time this step aims at (None: no limit)."""
        return self.lone_step_s if self.alone else self.step_s

    def _rows_within(self, seconds: float | None) -> int | None:
        if seconds is None:
            return self.max_rows
        rows = self.speed.rows_within(seconds)
        return rows if self.max_rows is None else min(rows, self.max_rows)

    @property
    def row_seconds(self) -> float:
        """Seconds per row-step of full steps: how fast work gets done."""
        rows, speed = self.limit or 1024, self.speed
        return (speed.overhead + speed.per_row * rows) / rows

    def __len__(self) -> int:
        return len(self.runs) + len(self.waiting)

    def rows(self) -> int:
        """Rows running, in every network."""
        return sum(len(batch) for _, batch in self.batches)

    def _batch(self, direction: Direction) -> Batch:
        return self.batches[-1][1] if direction == "backward" else self.batch

    def add(self, run: GenerateRun | ScoreRun) -> None:
        self.waiting.append(run)

    @torch.inference_mode()
    def step(self, before: Callable[[int], None] | None = None) -> list[GenerateRun | ScoreRun]:
        """One step of every running row, and a piece of score work; `before` learns how
        many rows the step runs. Returns the runs that finished (cancelled runs are
        dropped without a word)."""
        started = time.perf_counter()
        self.speed.observe_turn(started, bool(self.runs))
        finished = self._expire()
        while self.waiting and (self.max_runs is None or len(self.runs) < self.max_runs):
            self.runs.append(self.waiting.popleft())
        scoring = [run for run in self.runs if isinstance(run, ScoreRun)]
        limit = self._rows_within(self.step_seconds()) or 1 << 62
        if scoring:  # the piece of score work that follows takes the other half
            limit //= 2
        runs = [run for run in self.runs if isinstance(run, GenerateRun)]
        room = limit - fit_rows(runs, self._batch, self.rows(), limit)
        self._start_jobs(room)
        rows = self.rows()
        stepped = sum(batch.stepped for _, batch in self.batches)  # dead rows too
        if before is not None:
            before(rows)
        shares = [(run, self._batch(d).alive(h)) for (d, h), (run, _) in self.jobs.items()]
        ended: list[Ended] = []
        for direction, batch in self.batches:
            for handle, ids, lps in batch.step():
                run, index = self.jobs.pop((direction, handle))
                del run.handles[index]
                ended.append((run, index, direction, ids, lps))
        # a step's time, for the speed: the rows' work, without the rescoring of names
        # that ended (one pass over whole names, whatever the step's rows)
        stepping = time.perf_counter() - started
        self._rescore(ended)
        for run, index, direction, ids, lps in ended:
            if run in self.runs:
                follow = run.take(index, ids, lps, direction)
                if follow is not None and not run.done:  # a name grown on
                    self._add(run, index, "forward", follow)
                if run.done:
                    finished.append(self._finish(run))
        generating = time.perf_counter() - started
        if rows:
            self.speed.observe(stepped, stepping)
            for run, alive in shares:  # each its rows' share of the step
                run.seconds_done += generating * alive / rows
        if scoring:
            # Score work gets a step's time, or half of it beside generation, on average: a
            # longer piece (one name at least) is paid back by the steps after, which run none
            budget = (self.step_seconds() or 0) / (2 if rows else 1)
            seconds = 0.0
            if self.step_s is not None and rows and self.score_debt > 0:
                self.score_debt -= budget
            else:
                positions = UNLIMITED_PIECE
                if self.step_s is not None:
                    positions = min(self.speed.positions_within(budget), positions)
                started = time.perf_counter()
                self.turn += 1
                positions = score_piece(self.engine, scoring, positions, self.turn)
                seconds = time.perf_counter() - started
                if positions:
                    self.speed.observe_score(positions, seconds)
                self.score_debt = max(seconds - budget, 0.0) if rows else 0.0
            if rows:
                self.speed.observe_share(generating, seconds)
            generating += seconds
            for score in scoring:
                if score.done:
                    finished.append(self._finish(score))
        self.speed.worked = generating
        self.generating = sum(isinstance(run, GenerateRun) for run in self.runs)
        self.scoring = len(self.runs) - self.generating
        self.generated_at = time.monotonic() if self.generating else self.generated_at
        return finished

    def _rescore(self, ended: list[Ended]) -> None:
        """Names the backward network found get the forward network's log-probs, in one
        pass (a grown name's backward stage needs none: its forward stage has them)."""
        if self.backward is None or not ended:
            return
        picks = [
            i
            for i, (run, _, direction, _, _) in enumerate(ended)
            if direction == "backward" and run in self.runs and not run.the_plan().grow
        ]
        jobs = [(ended[i][0].the_plan(), ended[i][0].labels, ended[i][3]) for i in picks]
        for i, logprobs in zip(
            picks, rescore(self.engine.model, self.engine.vocab, jobs), strict=True
        ):
            run, index, direction, ids, _ = ended[i]
            ended[i] = (run, index, direction, ids, logprobs)

    def share(self, score: bool) -> float:
        """The share of the time that the model works on generate (or score) requests
        now: each step runs some of both while there is both, and the rest of the time
        goes to the scheduler itself and waiting for the interpreter. Light generate
        requests come and go: one seen in the last RECENT_S counts as there (else scores
        admitted in a gap between two would be admitted for the whole model)."""
        speed = self.speed
        if score:
            recent = time.monotonic() - self.generated_at < RECENT_S
            share = 1 - speed.generate_share if self.generating or recent else 1.0
        else:
            share = speed.generate_share if self.scoring else 1.0
        return share * speed.busy

    def estimate(self, run: GenerateRun | ScoreRun) -> float:
        """Sets and returns the model's time `run` is expected to take."""
        if isinstance(run, GenerateRun):
            run.seconds = self.generate_seconds(run.units)
        else:
            run.seconds = self.score_seconds(run.units)
        return run.seconds

    def generate_seconds(self, row_steps: float) -> float:
        """The model's time for generate work of this size, at the speed measured."""
        return row_steps * self.row_seconds

    def score_seconds(self, positions: float) -> float:
        """The model's time for score work of this size, at the speed measured."""
        speed = self.speed
        if not speed.per_position:
            return positions * 2 * self.row_seconds
        piece = speed.positions_within(self.step_s / 2) if self.step_s else UNLIMITED_PIECE
        return positions * speed.per_position + -(-positions // piece) * speed.score_overhead

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

    def _start_jobs(self, room: int) -> None:
        """Start jobs while there is `room` (rows), fewest running rows first, for the
        requests with no job parked."""
        parked = any(batch.parked for _, batch in self.batches)
        runs = [
            run
            for run in self.runs
            if isinstance(run, GenerateRun)
            and run.wants_job()
            and not (parked and jobs_of(run, self._batch, parked=True))
        ]
        if not runs:
            return
        running = {
            id(run): sum(self._batch(d).alive(h) for d, h in run.handles.values()) for run in runs
        }
        runs.sort(key=lambda run: running[id(run)])  # stable: older first among equals
        new: list[tuple[GenerateRun, int, Direction, SampleJob]] = []
        while runs:
            for run in runs:
                size = min(run.size, run.budget - run.started * run.size) * run.rows_per_name
                # a request with no rows running starts a job whatever the room: every
                # request admitted moves on at every step
                if size <= room or not running[id(run)]:
                    new.append((run, *run.next_job()))
                    room -= size
                    running[id(run)] += size
            runs = [r for r in runs if r.wants_job() and r.size * r.rows_per_name <= room]
        for direction, batch in self.batches:
            batch.reserve(
                sum(job.n * run.rows_per_name for run, _, d, job in new if d == direction)
            )
        for run, index, direction, job in new:
            self._add(run, index, direction, job)

    def _add(self, run: GenerateRun, index: int, direction: Direction, job: SampleJob) -> None:
        handle = self._batch(direction).add(job)
        run.handles[index] = (direction, handle)
        self.jobs[direction, handle] = (run, index)

    def _finish(self, run: GenerateRun | ScoreRun) -> GenerateRun | ScoreRun:
        """Take `run` out, with whatever jobs of it still run."""
        if isinstance(run, GenerateRun):
            for direction, handle in run.handles.values():
                self._batch(direction).cancel(handle)
                del self.jobs[direction, handle]
            run.handles.clear()
        if run in self.runs:
            self.runs.remove(run)
        else:
            self.waiting.remove(run)
        return run

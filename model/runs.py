"""The requests a Scheduler (model/scheduler.py) serves, and estimates of their work.

A generate request is served as jobs (model/sampling.py) of at most CHUNK_ROWS rows, each
with its own generator seeded from the request's seed and the job's index: a job's names
then depend on nothing but the request, so a request gets the same names whenever its
jobs start and whatever else shares the batch. Jobs are taken in index order, which keeps
filtered requests deterministic too: the names kept, `sampled` and the reason for stopping
follow from the jobs in order, however many ran ahead (those are dropped).

A request's text constraints decide its jobs (model/constraints.py): a job runs on the
forward or the backward network, and a job growing names from a substring runs twice,
backward then forward, on the same random stream.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from model.constraints import Direction, Plan, grown, plan_for, stage_request
from model.guidance import rows_per_name
from model.jobs import SampleJob
from model.request import GeneratedName, GenerateRequest, GenerateResult, StopReason
from model.scoring import NameScore, score_names

if TYPE_CHECKING:
    from model.engine import Engine

# Fixed: a seeded request's names depend on it. Small, so that a request's jobs fit in
# the room a step has left (they start whole) and it refills as its rows end; not
# smaller, since every job costs its own bookkeeping (10,000 names in jobs of 16: about
# 25% slower than in one batch; in jobs of 64, as fast).
CHUNK_ROWS = 64

Finished = tuple[list[list[int]], list[float], Direction]  # a job's ids, logprobs, network


@dataclass(frozen=True)
class ScoredName:
    score: NameScore
    in_corpus: bool


def job_seed(seed: int, index: int) -> int:
    """Job 0 uses the request's seed itself (so one-job requests keep their names); the
    others a mix of it with their index (splitmix64)."""
    if index == 0:
        return seed
    z = (seed + index * 0x9E3779B97F4A7C15) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (z ^ (z >> 31)) & (2**63 - 1)


def generate_work(req: GenerateRequest, mean_length: float) -> float:
    """Expected row-steps: rows (a filtered request's first guess) times the steps of a
    name of the corpus's mean length, within the request's lengths (twice for names
    grown from a substring: the forward stage runs the backward one's characters again)."""
    texts = max(len(req.prefix), len(req.ends_with), len(req.contains))
    steps = min(max(mean_length, req.min_length, texts), req.max_length) + 1
    return _first_rows(req) * steps * (1 if req.implied_contains else 2)


def score_work(names: Sequence[str]) -> float:
    """Positions a score request runs (its names padded to its longest)."""
    return len(names) * (max((len(n) for n in names), default=0) + 1)


def _first_rows(req: GenerateRequest) -> int:
    return math.ceil(req.n * 1.2) + 8 if req.filtered else req.n


class Run:
    """A request in the scheduler. `cancelled` may be set from any thread. `units`: its
    work in row-steps (generate) or positions (score); `seconds`: the model's time that
    is expected to take (set by whoever admits it), `seconds_done`: the time it has had."""

    def __init__(self, units: float, deadline: float | None) -> None:
        self.units, self.seconds, self.seconds_done = units, 0.0, 0.0
        self.deadline = deadline  # time.monotonic() past which it stops
        self.cancelled = False
        self.timed_out = False
        self.failed = False  # the step it was in raised


class GenerateRun(Run):
    def __init__(self, engine: Engine, req: GenerateRequest, deadline: float | None = None):
        super().__init__(generate_work(req, engine.mean_length), deadline)
        self.engine, self.req = engine, req
        for text in (req.prefix, req.ends_with, req.contains):
            engine.vocab.encode(text)  # raises UnknownCharacterError
        if req.backward and engine.backward is None:
            field = "ends_with" if req.ends_with else "contains"
            raise ValueError(f"{field} needs a checkpoint with a backward network")
        self.labels = engine.label_ids(req.labels)
        self.rows_per_name = rows_per_name(self.labels, req.guidance)  # guided: its twin too
        self.units *= self.rows_per_name
        self.plan: Plan | None = None  # at the first job, on the thread that runs the model
        self.seed = (
            req.seed if req.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        )
        self.budget = req.n * engine.budget_factor + 100 if req.filtered else req.n
        self.size = min(_first_rows(req), CHUNK_ROWS)  # rows per job (the last may have fewer)
        self.started = 0  # jobs started
        # (network, batch handle) of each job running, by index
        self.handles: dict[int, tuple[Direction, int]] = {}
        self.generators: dict[int, torch.Generator] = {}  # of jobs with a stage to come
        self.finished: dict[int, Finished] = {}  # not yet taken
        self.taken = 0  # jobs taken, in order
        self.found: list[GeneratedName] = []
        self.seen: set[str] = set()
        self.sampled = 0
        self.passed = 0  # names that met the text constraints
        self.idle = 0  # jobs in a row that found nothing new (of names that met them)

    @property
    def done(self) -> bool:
        req = self.req
        starved = req.filtered and ((req.temperature == 0 and self.taken > 0) or self.idle >= 2)
        return starved or len(self.found) >= req.n or self.sampled >= self.budget

    def wants_job(self) -> bool:
        planned = self.started * self.size
        if self.done or planned >= self.budget:
            return False
        if not self.req.filtered:
            return True
        if self.req.temperature == 0:  # greedy repeats itself: one job tells
            return self.started == 0
        # ahead of what has been taken: enough rows for the names still wanted, but no
        # more than it has taken so far (or four jobs), so that the jobs dropped when the
        # filters stop finding names cost at most as much as the ones taken
        ahead = planned - self.sampled
        rate = (self.passed + 1) / (self.sampled + 1)  # of names meeting the constraints
        wanted = math.ceil((self.req.n - len(self.found)) * 1.2 / rate) + 8
        return ahead < min(wanted, max(self.sampled, 4 * self.size))

    def the_plan(self) -> Plan:
        if self.plan is None:  # one small pass of each network, when ends_with has a prefix
            engine = self.engine
            self.plan = plan_for(self.req, engine.vocab, engine.model, engine.backward, self.labels)
        return self.plan

    def next_job(self) -> tuple[int, Direction, SampleJob]:
        """The next job's index, its network and the job."""
        plan, index = self.the_plan(), self.started
        rows = min(self.size, self.budget - index * self.size)
        generator = torch.Generator(device=self.engine.device)
        generator.manual_seed(job_seed(self.seed, index))
        if plan.grow:
            self.generators[index] = generator
        self.started += 1
        request = stage_request(plan, self.req)
        return index, plan.direction, SampleJob(rows, request, plan.forced, generator, self.labels)

    def take(
        self,
        index: int,
        ids: list[list[int]],
        logprobs: list[float],
        direction: Direction = "forward",
    ) -> SampleJob | None:
        """A job's names (ids as its network sampled them; logprobs the forward network's,
        rescored for the backward network's names that meet the constraints); taken in
        index order. The backward stage of a name grown from a substring returns instead
        the forward stage that continues its names, on the job's random stream."""
        if direction == "backward" and self.the_plan().grow:
            generator = self.generators.pop(index)
            return SampleJob(len(ids), self.req, (), generator, self.labels, grown(ids))
        self.finished[index] = (ids, logprobs, direction)
        while self.taken in self.finished and not self.done:
            self._take(*self.finished.pop(self.taken))
            self.taken += 1
        return None

    def _take(self, ids: list[list[int]], logprobs: list[float], direction: Direction) -> None:
        req, vocab, corpus = self.req, self.engine.vocab, self.engine.corpus_names
        plan = self.the_plan()
        self.sampled += len(ids)
        before, passed = len(self.found), 0
        for row, logprob in zip(ids, logprobs, strict=True):
            name = plan.decode(vocab, row, direction)
            if not plan.accepts(name):
                continue
            passed += 1
            in_corpus = name in corpus
            if (req.exclude_existing and in_corpus) or (req.unique and name in self.seen):
                continue
            self.seen.add(name)
            self.found.append(GeneratedName(name, logprob, in_corpus))
            if len(self.found) == req.n:
                break
        self.passed += passed
        if passed:  # a job whose names all failed the constraints says nothing of the filters
            self.idle = self.idle + 1 if len(self.found) == before else 0

    def result(self) -> GenerateResult:
        complete = len(self.found) == self.req.n
        stopped: StopReason | None = None
        if not complete:
            if self.timed_out:
                stopped = "time"
            else:
                stopped = "budget" if self.sampled >= self.budget else "no_new_names"
        return GenerateResult(self.found, complete, self.sampled, self.seed, stopped)


class ScoreRun(Run):
    def __init__(
        self,
        engine: Engine,
        names: Sequence[str],
        labels: tuple[int, ...] | None = None,
        deadline: float | None = None,
        per_name: Sequence[tuple[int, ...]] | None = None,
    ) -> None:
        """labels: the label ids every name is scored under, or per_name: each name's
        (a conditional model only; None: unknown)."""
        super().__init__(score_work(names), deadline)
        self.engine, self.names = engine, list(names)
        self.labels: list[tuple[int, ...]] | None = None  # each name's
        if per_name is not None:
            self.labels = list(per_name)
            if len(self.labels) != len(names):
                raise ValueError(f"{len(self.labels)} label sets for {len(names)} names")
        elif labels is not None:
            self.labels = [labels] * len(names)
        self.scores: list[NameScore] = []
        self.handed = 0  # names handed out to be scored

    @property
    def done(self) -> bool:
        return len(self.scores) == len(self.names)

    def take_names(self, positions: int) -> list[str]:
        """The next names not yet handed out, as many as fit in `positions` padded to the
        longest (at least one)."""
        start = end = self.handed
        longest = 0
        while end < len(self.names):
            longest = max(longest, len(self.names[end]) + 1)
            if end > start and (end + 1 - start) * longest > positions:
                break
            end += 1
        self.handed = end
        return self.names[start:end]

    def result(self) -> list[ScoredName]:
        corpus = self.engine.corpus_names
        return [ScoredName(s, s.name in corpus) for s in self.scores]


def score_piece(engine: Engine, runs: list[ScoreRun], positions: int, turn: int) -> int:
    """One piece of score work of about `positions` (one name at least) for the
    scheduler: names of each request in turn, the first one rotating with `turn`, scored
    in one pass. Returns the positions run; each request is charged its share of the
    time."""
    pieces: list[tuple[ScoreRun, list[str]]] = []
    longest = count = 0
    for i in range(len(runs)):
        run = runs[(turn + i) % len(runs)]
        left = positions - count * longest
        if run.handed == len(run.names) or (pieces and left <= 0):
            continue
        names = run.take_names(left)
        pieces.append((run, names))
        count += len(names)
        longest = max(longest, *(len(n) + 1 for n in names))
    if not pieces:
        return 0
    names = [n for _, part in pieces for n in part]
    labels: list[tuple[int, ...]] | None = None
    if any(run.labels is not None for run, _ in pieces):  # a conditional model
        unknown = (0,) * len(engine.model.config.label_sizes)
        labels = []
        for run, part in pieces:  # the part is the names just handed out
            given = run.labels[run.handed - len(part) : run.handed] if run.labels else None
            labels += given or [unknown] * len(part)
    started = time.perf_counter()
    scores = score_names(engine.model, engine.vocab, names, labels, len(names))
    seconds = time.perf_counter() - started
    at = 0
    for run, part in pieces:
        run.scores += scores[at : at + len(part)]
        run.seconds_done += seconds * len(part) / len(names)
        at += len(part)
    return len(names) * longest

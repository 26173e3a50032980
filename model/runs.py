"""The requests a Scheduler (model/scheduler.py) serves, and estimates of their work and
of the model's speed.

A generate request is served as jobs (model/sampling.py) of at most CHUNK_ROWS rows, each
with its own generator seeded from the request's seed and the job's index: a job's names
then depend on nothing but the request, so a request gets the same names whenever its
jobs start and whatever else shares the batch. Jobs are taken in index order, which keeps
filtered requests deterministic too: the names kept, `sampled` and the reason for stopping
follow from the jobs in order, however many ran ahead (those are dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from model.request import GeneratedName, GenerateRequest, GenerateResult, StopReason
from model.sampling import SampleJob
from model.scoring import NameScore

if TYPE_CHECKING:
    from model.engine import Engine

# Fixed: a seeded request's names depend on it. Small, so that a request's jobs fit in
# the room a step has left (they start whole) and it refills as its rows end.
CHUNK_ROWS = 16


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
    name of the corpus's mean length, within the request's lengths."""
    steps = min(max(mean_length, req.min_length, len(req.prefix)), req.max_length) + 1
    return _first_rows(req) * steps


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
        self.prefix = tuple(engine.vocab.encode(req.prefix))
        self.labels = engine.label_ids(req.labels)
        self.seed = (
            req.seed if req.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        )
        self.budget = req.n * engine.budget_factor + 100 if req.filtered else req.n
        self.size = min(_first_rows(req), CHUNK_ROWS)  # rows per job (the last may have fewer)
        self.started = 0  # jobs started
        self.handles: dict[int, int] = {}  # batch handle of each job running, by index
        self.finished: dict[int, tuple[list[list[int]], list[float]]] = {}  # not yet taken
        self.taken = 0  # jobs taken, in order
        self.found: list[GeneratedName] = []
        self.seen: set[str] = set()
        self.sampled = 0
        self.idle = 0  # jobs in a row that found nothing

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
        wanted = math.ceil((self.req.n - len(self.found)) * 1.2) + 8
        return ahead < min(wanted, max(self.sampled, 4 * self.size))

    def next_job(self) -> tuple[int, SampleJob]:
        index = self.started
        rows = min(self.size, self.budget - index * self.size)
        generator = torch.Generator(device=self.engine.device)
        generator.manual_seed(job_seed(self.seed, index))
        self.started += 1
        return index, SampleJob(rows, self.req, self.prefix, generator, self.labels)

    def take(self, index: int, ids: list[list[int]], logprobs: list[float]) -> None:
        """A job's names; taken in index order."""
        self.finished[index] = (ids, logprobs)
        while self.taken in self.finished and not self.done:
            self._take(*self.finished.pop(self.taken))
            self.taken += 1

    def _take(self, ids: list[list[int]], logprobs: list[float]) -> None:
        req, vocab, corpus = self.req, self.engine.vocab, self.engine.corpus_names
        self.sampled += len(ids)
        before = len(self.found)
        for row, logprob in zip(ids, logprobs, strict=True):
            name = vocab.decode(row)
            in_corpus = name in corpus
            if (req.exclude_existing and in_corpus) or (req.unique and name in self.seen):
                continue
            self.seen.add(name)
            self.found.append(GeneratedName(name, logprob, in_corpus))
            if len(self.found) == req.n:
                break
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
    ) -> None:
        super().__init__(score_work(names), deadline)
        self.engine, self.names, self.labels = engine, list(names), labels
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


class Speed:
    """A step's time as overhead + rows * per_row, learnt from the steps run (moving
    averages: the machine's load changes)."""

    def __init__(self) -> None:
        self.overhead = 0.0  # seconds a step costs whatever its rows
        self.per_row = 0.0  # and each row; 0 until measured
        self.score_overhead = 0.0  # seconds a piece of score work costs whatever its size
        self.per_position = 0.0  # and each position (a name's character or its end)
        self.generate_share = 2 / 3  # of a step's time, when it runs both kinds of work
        self.busy = 1.0  # share of the time between steps that they work
        self.turn = self.worked = 0.0  # when the last step began, what it worked

    def observe(self, rows: int, seconds: float) -> None:
        if rows <= 4:  # the overhead is most of it
            self.overhead = seconds if not self.overhead else 0.9 * self.overhead + 0.1 * seconds
        elif rows >= 32:
            per_row = max(seconds - self.overhead, seconds / 4) / rows
            self.per_row = per_row if not self.per_row else 0.9 * self.per_row + 0.1 * per_row

    def observe_turn(self, now: float, busy: bool) -> None:
        """A step starts at `now`; `busy`: there was work since the last one began."""
        if busy and self.turn:
            share = min(self.worked / (now - self.turn), 1.0)
            self.busy = 0.95 * self.busy + 0.05 * share
        self.turn, self.worked = now, 0.0

    def observe_share(self, generating: float, scoring: float) -> None:
        """A step that had both kinds of work: so many seconds of each."""
        share = generating / (generating + scoring)
        self.generate_share = 0.95 * self.generate_share + 0.05 * share

    def observe_score(self, positions: int, seconds: float) -> None:
        """A piece of score work."""
        if positions <= 16:  # the overhead is most of it
            rate = self.score_overhead
            self.score_overhead = seconds if not rate else 0.9 * rate + 0.1 * seconds
        else:
            per_position = max(seconds - self.score_overhead, seconds / 4) / positions
            rate = self.per_position
            self.per_position = per_position if not rate else 0.9 * rate + 0.1 * per_position

    def positions_within(self, seconds: float) -> int:
        """How many positions a piece of score work of `seconds` can run (64 at least)."""
        if not self.per_position:
            return 1 << 30
        return max(64, int((seconds - self.score_overhead) / self.per_position))

    def rows_within(self, seconds: float) -> int:
        """How many rows a step of `seconds` can run (16 at least)."""
        if not self.per_row:
            return 1 << 30
        return max(16, int((seconds - self.overhead) / self.per_row))

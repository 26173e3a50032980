"""A batch of rows, the rows of sample jobs (model/jobs.py), stepping through the cached
network (model/incremental.py) together, each at its own position: rows join at any step
and leave when their name ends (continuous batching); guided rows bring their twins
(model/guidance.py).

The engine moves ids; names and characters live in `Vocab`. Randomness comes from an
explicit `torch.Generator` per job, and each row of a job draws one uniform number per
step from it for as long as any row of the job runs, so a job's names depend on nothing
else in the batch: not on its neighbours, not on when it joined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.controls import Controls, choose
from model.guidance import GUIDED, TWIN, UNGUIDED, guide_logits, guided
from model.incremental import IncrementalWaveNet
from model.jobs import SampleJob, needs_of
from model.request import HARD_MAX_LENGTH, GenerateRequest
from model.rows import Handles, ResultArena, RowTable

MAX_STEPS = HARD_MAX_LENGTH + 1  # a name's characters, then its end


# Columns of a row's integers and of its floats (the network state follows the floats).
# READ: the arena row a row reads its random numbers and forced characters from (its own,
# RESULT, but for a guidance twin, whose RESULT is the trash row); GUIDE: its part in
# classifier-free guidance.
TOKEN, POS, RESULT, JOB, TOP_K, MIN_LEN, MAX_LEN, PREFIX_LEN, READ, GUIDE = range(10)
DEAD = -1  # the job of a row whose name ended
# Dead rows are swept out once they are this share of the table: stepping a few dead rows
# costs less than a sweep, which moves rows in every state table
SWEEP_SHARE = 1 / 16
TEMPERATURE, TOP_P, GUIDANCE = range(3)


@dataclass
class _Running:
    job: SampleJob
    base: int  # its rows' results are arena rows [base, base + n)
    start: int  # the batch's clock when it joined: its rows' position is clock - start
    alive: int  # rows still sampling
    forced: int  # steps of forced prefix characters, its longest prefix


class Batch:
    """Rows of any number of jobs, each row at its own position, stepped together.

    A row whose name ends is marked dead (its job -1, its results going to a trash row of
    the arena) and swept out of the table once they are a sixteenth of its rows: a sweep
    moves rows in every state table, which costs more than stepping a few dead rows, but
    not many (side by side, sweeping at a sixteenth sampled n = 100 5% and n = 10,000 7%
    faster than at a quarter and 32 rows at least, the rule before). A job's
    rows leave their characters and log-probabilities in the results arena, where the job
    finds them when its last row ends.

    The network's rings are indexed by the batch's clock, not by each row's position: a
    fresh row's rings hold its pad value in every slot (incremental.State.cat), so a row
    that joins at any clock reads exactly what it would have read alone.
    """

    def __init__(self, net: IncrementalWaveNet) -> None:
        self.net = net
        self.clock = 0
        self.rows = RowTable(net, 10, 3)
        self.arena = ResultArena(MAX_STEPS)
        self.jobs: dict[int, _Running] = {}  # by handle
        # jobs taken out of the steps for a while: their rows, and the clock then
        self.parked: dict[int, tuple[_Running, list[torch.Tensor], int]] = {}
        self.handles = Handles()
        self.dead = 0  # rows of the table whose names ended, not yet swept out
        self.trash = self.arena.allocate(1)  # where dead rows write
        self.arena.uniform[self.trash] = 0.5  # and read a number any control can use
        # jobs that need work no other job needs, counted so that steps can skip it
        self.needs: Counter[str] = Counter()

    def __len__(self) -> int:
        """Rows still sampling."""
        return len(self.rows) - self.dead

    @property
    def stepped(self) -> int:
        """Rows a step computes: those sampling and the dead ones not yet swept."""
        return len(self.rows)

    def alive(self, handle: int) -> int:
        """Rows of the job still sampling (0 while it is parked)."""
        run = self.jobs.get(handle)
        return 0 if run is None else run.alive

    def park(self, handles: Sequence[int]) -> None:
        """Take these jobs' rows out of the steps, state and all, until `resume`. A parked
        job draws no random numbers, so its names are the same as if it had never paused."""
        job = self.rows.views().ints[JOB]
        wanted = torch.tensor(list(handles))
        rows = torch.isin(job, wanted).nonzero().squeeze_(1)
        taken = self.rows.take_out(rows.tolist())
        owner = taken[0][:, JOB]
        for handle in handles:
            mine = (owner == handle).nonzero().squeeze_(1)
            self.parked[handle] = (self.jobs.pop(handle), [t[mine] for t in taken], self.clock)

    def resume(self, handle: int) -> None:
        """Back into the steps, from the next one on, as if no step had passed."""
        run, rows, parked_at = self.parked.pop(handle)
        shift = self.clock - parked_at
        self.rows.put_back(rows, shift)
        run.start += shift
        self.jobs[handle] = run

    def reserve(self, rows: int) -> None:
        """Room for `rows` more rows, before adding many jobs."""
        self.rows.reserve(len(self.rows) + rows)

    def add(self, job: SampleJob) -> int:
        """Rows for `job` (n >= 1), sampling from the next step on; returns its handle."""
        m, req, net = job.n, job.request, self.net
        handle = self.handles.take()
        base = self.arena.allocate(m)
        self.jobs[handle] = _Running(job, base, self.clock, m, job.longest_prefix)
        # forced characters wait in the rows' results, where each step writes its own
        prefixes = job.row_prefixes or (job.prefix,)
        if job.longest_prefix:
            rows = torch.zeros(len(prefixes), job.longest_prefix, dtype=torch.long)
            for i, prefix in enumerate(prefixes):
                rows[i, : len(prefix)] = torch.tensor(prefix, dtype=torch.long)
            self.arena.ids[base : base + m, : job.longest_prefix] = rows
        self.needs.update(needs_of(job))
        twins = guided(job.labels, req.guidance)
        first = len(self.rows)
        ints, floats = self.rows.append(m, job.labels)
        ints[:, TOKEN] = 0
        ints[:, POS] = 0
        ints[:, RESULT] = torch.arange(base, base + m)
        ints[:, JOB] = handle
        ints[:, TOP_K] = req.top_k or net.vocab_size
        ints[:, MIN_LEN] = req.min_length
        ints[:, MAX_LEN] = req.max_length
        ints[:, PREFIX_LEN] = torch.tensor([len(prefix) for prefix in prefixes])
        ints[:, READ] = ints[:, RESULT]
        ints[:, GUIDE] = GUIDED if twins else UNGUIDED
        floats[:, TEMPERATURE] = req.temperature
        floats[:, TOP_P] = req.top_p if req.top_p is not None else 1.0
        floats[:, GUIDANCE] = req.guidance
        if twins:  # the same rows with the labels unknown, writing to the trash row
            twin_ints, twin_floats = self.rows.append(m, None)
            twin_ints.copy_(self.rows.ints[first : first + m])
            twin_floats.copy_(self.rows.floats[first : first + m])
            twin_ints[:, RESULT] = self.trash
            twin_ints[:, GUIDE] = TWIN
            self.jobs[handle].alive = 2 * m
        return handle

    def cancel(self, handle: int) -> None:
        """Drop a job's rows; its results are lost."""
        if handle in self.parked:
            self.jobs[handle] = self.parked.pop(handle)[0]
        else:
            job = self.rows.views().ints[JOB]
            self.rows.remove((job == handle).nonzero().squeeze_(1).tolist())
        self._release(handle)

    def step(self) -> list[tuple[int, list[list[int]], list[float]]]:
        """Advance every row one character. Returns the jobs whose last row ended: their
        handle, names as id lists (without the end) and log-probabilities under the model
        at temperature 1 (natural log, every character and the end)."""
        if not len(self.rows):
            return []
        views, arena, clock = self.rows.views(), self.arena, self.clock
        token, pos, result, job, top_k, min_len, max_len, prefix_len, read, guide = views.ints
        temperature, top_p, guidance = views.floats
        logits = self.net.step(token, views.state, clock)  # (B, V)
        early = late = prefixed = False  # rows before min_length, at max_length, in a prefix
        for run in self.jobs.values():
            n, req, age = run.job.n, run.job.request, clock - run.start
            torch.rand(n, generator=run.job.generator, out=arena.uniform[run.base : run.base + n])
            early = early or age < req.min_length
            late = late or age >= req.max_length
            prefixed = prefixed or age < run.forced
        logp = F.log_softmax(logits, dim=-1)  # under the labels: what a name's logprob sums
        needs = self.needs
        pairs = guide_logits(logits, read, guide, guidance) if needs["guided"] else None
        if early:  # no end before min_length
            logits[:, 0].masked_fill_(pos < min_len, float("-inf"))
        controls = Controls(
            temperature,
            top_k,
            top_p,
            not needs["temperature"],
            needs["filter"] > 0,
            needs["greedy"] > 0,
        )
        nxt = choose(logits, arena.uniform[read], controls)
        if pairs is not None:  # a twin follows its row
            leaders, twins = pairs
            nxt[twins] = nxt[leaders]
        if prefixed:  # forced prefix characters
            ahead = arena.ids[read, pos.clamp(max=MAX_STEPS - 1)]
            nxt = torch.where(pos < prefix_len, ahead, nxt)
        if late:  # the end is forced at max_length
            nxt.masked_fill_(pos >= max_len, 0)
        arena.logprob.index_add_(0, result, logp.gather(1, nxt[:, None]).squeeze_(1))
        arena.ids.index_put_((result, pos), nxt)
        token.copy_(nxt)
        pos += 1
        self.clock += 1
        stop = nxt == 0
        if self.dead:  # dead rows end whenever they like, and must not outgrow the arena
            stop &= job >= 0
            pos.clamp_(max=MAX_STEPS - 1)
        ended = stop.nonzero().squeeze_(1)
        if not len(ended):
            return []
        finished = []
        for handle, rows in Counter(job[ended].tolist()).items():
            run = self.jobs[handle]
            run.alive -= rows
            if run.alive == 0:
                finished.append(handle)
        job[ended] = DEAD
        result[ended] = self.trash
        read[ended] = self.trash
        guide[ended] = UNGUIDED
        self.dead += len(ended)
        if self.dead >= SWEEP_SHARE * len(self.rows):
            self._sweep()
        return [(handle, *self._results(handle)) for handle in finished]

    def _sweep(self) -> None:
        """Dead rows out of the table."""
        if self.dead < len(self.rows):
            job = self.rows.views().ints[JOB]
            self.rows.remove((job == DEAD).nonzero().squeeze_(1).tolist())
        else:
            self.rows.remove(list(range(len(self.rows))))
        self.dead = 0

    def _release(self, handle: int) -> None:
        run = self.jobs.pop(handle)
        self.arena.release(run.base, run.job.n)
        self.needs.subtract(needs_of(run.job))
        self.handles.give_back(handle)

    def _results(self, handle: int) -> tuple[list[list[int]], list[float]]:
        run = self.jobs[handle]
        results = self.arena.read(run.base, run.job.n, run.job.request.max_length + 1)
        self._release(handle)
        return results


@torch.inference_mode()
def sample_jobs(
    net: IncrementalWaveNet, jobs: Sequence[SampleJob]
) -> list[tuple[list[list[int]], list[float]]]:
    """Sample every job in one batch. Returns per job its names as id lists (without
    boundary tokens) and their log-probabilities under the model at temperature 1 (natural
    log, every character and the end token). A job gets the same names alone or batched
    with others."""
    batch = Batch(net)
    handles = [batch.add(job) if job.n else -1 for job in jobs]
    results: dict[int, tuple[list[list[int]], list[float]]] = {-1: ([], [])}
    while len(batch):
        for handle, names, logprobs in batch.step():
            results[handle] = (names, logprobs)
    return [results[handle] for handle in handles]


def sample(
    net: IncrementalWaveNet,
    n: int,
    request: GenerateRequest,
    generator: torch.Generator,
    prefix: Sequence[int] = (),
    labels: Sequence[int] | None = None,
) -> tuple[list[list[int]], list[float]]:
    """n names with the controls of `request` (and its prefix as ids): sample_jobs with a
    single job."""
    job = SampleJob(n, request, tuple(prefix), generator, None if labels is None else tuple(labels))
    return sample_jobs(net, [job])[0]

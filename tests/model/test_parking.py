"""Parking: jobs taken out of the steps and put back later get the names they would have
got without the pause, and a scheduler parks a lone request's jobs when others arrive."""

from __future__ import annotations

import pytest
import torch

from model.engine import Engine
from model.incremental import IncrementalWaveNet
from model.jobs import SampleJob
from model.request import GenerateRequest
from model.runs import CHUNK_ROWS, GenerateRun
from model.sampling import Batch, sample_jobs
from model.scheduler import RECENT_S, Scheduler
from tests.model.test_conditioning import conditional
from tests.model.test_sampling import VOCAB, engine_with_corpus, trained_like


def jobs(labelled: bool) -> list[SampleJob]:
    """Jobs with different controls (fresh generators each call)."""

    def job(n: int, seed: int, **controls: object) -> SampleJob:
        req = GenerateRequest(**controls)  # type: ignore[arg-type]
        prefix = tuple(VOCAB.encode(req.prefix))
        labels = (1, 2) if labelled and seed % 2 else None
        return SampleJob(n, req, prefix, torch.Generator().manual_seed(seed), labels)

    return [
        job(40, 1),
        job(7, 2, prefix="ma", min_length=4, max_length=9),
        job(12, 3, temperature=0.5, top_k=4),
        job(3, 4, temperature=0),
        job(20, 5, max_length=6),
    ]


@pytest.mark.parametrize("labelled", [False, True])
@pytest.mark.parametrize("pause", [1, 2, 3, 5, 8, 13])
def test_parked_jobs_get_the_names_they_would_have_got(labelled: bool, pause: int) -> None:
    # rings of spans 1, 2, 4, 8: pauses of every phase against each span
    model = conditional({"kernel_sizes": (2, 2, 2, 2)}) if labelled else trained_like((2,) * 4)
    net = IncrementalWaveNet(model)
    alone = [sample_jobs(net, [j])[0] for j in jobs(labelled)]
    batch = Batch(net)
    index = {batch.add(j): i for i, j in enumerate(jobs(labelled))}
    results: dict[int, tuple[list[list[int]], list[float]]] = {}

    def step() -> None:
        for handle, names, logprobs in batch.step():
            results[index.pop(handle)] = (names, logprobs)

    step()
    step()
    parked = [h for h, i in index.items() if i in (0, 1, 4)]
    batch.park(parked)
    assert batch.alive(parked[0]) == 0
    for _ in range(pause):  # the others go on meanwhile
        step()
    for handle in parked[::-1]:  # back in another order
        batch.resume(handle)
    while len(batch):
        step()
    for i, (names, logprobs) in enumerate(alone):
        assert results[i][0] == names
        assert results[i][1] == pytest.approx(logprobs, abs=1e-4)


def test_a_parked_job_can_be_cancelled() -> None:
    net = IncrementalWaveNet(trained_like())
    batch = Batch(net)
    a, b = (batch.add(j) for j in jobs(False)[:2])
    batch.step()
    batch.park([a])
    batch.cancel(a)
    assert not batch.parked and a not in batch.jobs
    while len(batch):
        batch.step()
    assert b not in batch.jobs


def run_to_end(scheduler: Scheduler, runs: list[GenerateRun], late: GenerateRun) -> list[int]:
    """Serve `runs`, add `late` after a few steps; returns the rows of each step."""
    for run in runs:
        scheduler.add(run)
    rows, steps = [], 0
    while len(scheduler):
        if steps == 3:
            scheduler.add(late)
        scheduler.step(rows.append)
        steps += 1
    return rows


def test_a_lone_request_takes_long_steps_and_parks_when_another_arrives() -> None:
    engine: Engine = engine_with_corpus(set())
    heavy = GenerateRequest(n=10 * CHUNK_ROWS, seed=7, max_length=12)
    light = GenerateRequest(n=1, seed=8)
    alone = [engine.generate(heavy), engine.generate(light)]
    limit = 2 * CHUNK_ROWS
    # a row-step takes 1 ms, as if measured: a shared step's room is `limit` rows, a lone
    # one's ten times as many
    scheduler = Scheduler(engine, step_s=limit / 1000, lone_step_s=10 * limit / 1000)
    scheduler.speed.per_row = 1e-3
    runs = [GenerateRun(engine, heavy)]
    late = GenerateRun(engine, light)
    rows = run_to_end(scheduler, runs, late)
    assert min(rows[:3]) > 3 * limit  # alone: far beyond the shared limit
    assert rows[3] <= limit + 1  # the light one in: parked down to the limit, plus its row
    assert max(rows[4:]) > 3 * limit  # alone again once it is done: its jobs resumed
    assert runs[0].result().names == alone[0].names  # nothing changed by the pause
    assert late.result().names == alone[1].names


def test_score_work_counts_on_sharing_with_generate_work_seen_lately() -> None:
    """Light generate requests come and go between steps: scores admitted in a gap
    between two are still expected to share the model with them."""
    engine: Engine = engine_with_corpus(set())
    scheduler = Scheduler(engine, step_s=0.004)
    scheduler.speed.generate_share, scheduler.speed.busy = 0.75, 1.0
    assert scheduler.share(score=True) == 1.0  # no generate work ever seen
    run = GenerateRun(engine, GenerateRequest(n=1, seed=1))
    scheduler.add(run)
    while len(scheduler):
        scheduler.step()
    assert scheduler.generating == 0  # gone already, but seen a moment ago
    busy = scheduler.speed.busy  # (measured by the steps)
    assert scheduler.share(score=True) == pytest.approx(0.25 * busy)
    scheduler.generated_at -= 2 * RECENT_S
    assert scheduler.share(score=True) == pytest.approx(busy)

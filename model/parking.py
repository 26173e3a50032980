"""Parking: jobs taken out of the steps for a while, their rows' state kept, so that a
step runs no more rows than its room (model/scheduler.py). A request served alone takes
large steps; when others arrive, its jobs beyond the room park, and resume as room
frees. A parked job draws no random numbers, so its names do not change
(model/sampling.py's Batch.park).
"""

from __future__ import annotations

from collections.abc import Callable

from model.constraints import Direction
from model.runs import GenerateRun
from model.sampling import Batch

BatchOf = Callable[[Direction], Batch]


def jobs_of(run: GenerateRun, batch_of: BatchOf, parked: bool) -> list[tuple[Direction, int]]:
    """The (network, handle) of a request's running (or parked) jobs, by index."""
    jobs = [run.handles[i] for i in sorted(run.handles)]
    return [(d, h) for d, h in jobs if (h in batch_of(d).parked) == parked]


def fit_rows(runs: list[GenerateRun], batch_of: BatchOf, rows: int, limit: int) -> int:
    """Park jobs while the rows running exceed `limit`: those of the request with the
    most rows first, its last job first (each request keeps one job running, so every
    request moves on at every step). Then resume parked jobs while there is room: the
    request with the fewest rows first, its first job first. Returns the rows running."""
    parked = any(batch_of(d).parked for d in ("forward", "backward"))
    if rows <= limit and not parked:
        return rows
    active = {id(run): jobs_of(run, batch_of, parked=False) for run in runs}
    alive = {id(run): sum(batch_of(d).alive(h) for d, h in active[id(run)]) for run in runs}
    parking: dict[Direction, list[int]] = {"forward": [], "backward": []}
    while rows > limit and runs:
        run = max(runs, key=lambda r: (len(active[id(r)]) > 1, alive[id(r)]))
        if len(active[id(run)]) < 2:
            break
        direction, handle = active[id(run)].pop()
        size = batch_of(direction).alive(handle)
        parking[direction].append(handle)
        rows, alive[id(run)] = rows - size, alive[id(run)] - size
    for direction, handles in parking.items():
        if handles:
            batch_of(direction).park(handles)
    for run in sorted(runs, key=lambda r: alive[id(r)]):
        for direction, handle in jobs_of(run, batch_of, parked=True):
            batch = batch_of(direction)
            size = batch.parked[handle][0].alive
            if rows + size > limit and alive[id(run)]:  # (one with none resumes anyway)
                break
            batch.resume(handle)
            rows, alive[id(run)] = rows + size, alive[id(run)] + size
    return rows

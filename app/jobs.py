"""The typed jobs handlers give the inference worker (app/batching.py), and the ways a
job can fail to be served."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from model.engine import Engine, ScoredName
from model.request import GenerateRequest, GenerateResult
from model.runs import GenerateRun, ScoreRun


class Overloaded(Exception):
    """Too much work admitted already: come back in `retry_after` seconds."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class TimedOut(Exception):
    """The job did not finish within its time limit."""


class ClientGone(Exception):
    """The client disconnected before its job ran."""


R = TypeVar("R")


def _new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)  # a job is itself, whatever its fields
class Job(Generic[R]):
    """Work for the model; `future` gets its result. Made on the event loop."""

    future: asyncio.Future[R] = field(default_factory=_new_future, init=False)
    timer: asyncio.TimerHandle | None = field(default=None, init=False)
    run: GenerateRun | ScoreRun | None = field(default=None, init=False)

    def make_run(self, engine: Engine, deadline: float) -> GenerateRun | ScoreRun:
        raise NotImplementedError

    def fail(self, error: Exception) -> None:
        """End the job with `error` unless it has ended already; its work is dropped."""
        if self.run is not None:
            self.run.cancelled = True
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(eq=False)
class GenerateJob(Job[GenerateResult]):
    request: GenerateRequest

    def make_run(self, engine: Engine, deadline: float) -> GenerateRun:
        return GenerateRun(engine, self.request, deadline)


@dataclass(eq=False)
class ScoreJob(Job[list[ScoredName]]):
    names: list[str]  # trimmed, lowercased, in the vocabulary
    labels: Mapping[str, str | int] | None = None  # known to the checkpoint

    def make_run(self, engine: Engine, deadline: float) -> ScoreRun:
        # no deadline in the scheduler: a score has no partial answer (see HARD_STOP_S)
        return ScoreRun(engine, self.names, engine.label_ids(self.labels))


@dataclass(eq=False)
class InferJob(Job[list[ScoredName]]):
    """Every name scored under every label set (model/posterior.py's scored_sets): score
    work like any other, admitted by its size and run in pieces between steps."""

    names: list[str]  # trimmed, lowercased, in the vocabulary
    sets: list[tuple[int, ...]]  # label ids of a conditional checkpoint

    def make_run(self, engine: Engine, deadline: float) -> ScoreRun:
        names = [name for name in self.names for _ in self.sets]
        return ScoreRun(engine, names, per_name=self.sets * len(self.names))

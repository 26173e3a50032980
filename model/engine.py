"""The inference engine: a loaded checkpoint that generates and scores names.

Knows names and characters (through the checkpoint's vocab) but nothing of HTTP.
Generation with filters (exclude names of the training corpus, no duplicates) samples in
rounds until it has n names, a bounded budget of samples is spent, or the rounds stop
finding new names; the result says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from model.device import pick_device
from model.incremental import IncrementalWaveNet
from model.request import GeneratedName, GenerateRequest, GenerateResult, StopReason
from model.sampling import SampleJob, sample_jobs
from model.scoring import NameScore, score_names
from model.wavenet import WaveNet

# the request types, where callers of the engine have always found them
__all__ = ["Engine", "GenerateRequest", "GenerateResult", "GeneratedName", "ScoredName"]


@dataclass(frozen=True)
class ScoredName:
    score: NameScore
    in_corpus: bool


class Engine:
    def __init__(self, checkpoint: Checkpoint, *, budget_factor: int = 20) -> None:
        if not isinstance(checkpoint.model, WaveNet):
            raise CheckpointError(
                f"checkpoint {checkpoint.path} holds a {type(checkpoint.model).__name__}; "
                "the service serves WaveNet checkpoints"
            )
        self.checkpoint = checkpoint
        self.model: WaveNet = checkpoint.model.eval()
        self.vocab = checkpoint.vocab
        self.corpus_names = checkpoint.corpus_names
        self.device = next(self.model.parameters()).device
        self.net = IncrementalWaveNet(self.model)
        self.budget_factor = budget_factor  # filters may sample up to this many times n

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Engine:
        return cls(load_checkpoint(path, device=pick_device(device)))

    def generate(self, req: GenerateRequest) -> GenerateResult:
        """Raises UnknownCharacterError for a prefix outside the vocab, ValueError for
        inconsistent controls."""
        return self.generate_many([req])[0]

    def generate_many(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Several requests in shared model batches: every round samples the next batch of
        each unfinished request together. A request's rounds depend only on the request,
        so it gets the same names alone or alongside others."""
        runs = [_Run(self, req) for req in reqs]
        while active := [run for run in runs if not run.done]:
            jobs = [run.next_job() for run in active]
            for run, (ids, logprobs) in zip(active, sample_jobs(self.net, jobs), strict=True):
                run.take(ids, logprobs)
        return [run.result() for run in runs]

    def score(self, names: Sequence[str]) -> list[ScoredName]:
        """Raises UnknownCharacterError naming the first bad name and character."""
        scores = score_names(self.model, self.vocab, names)
        return [ScoredName(s, s.name in self.corpus_names) for s in scores]

    def score_many(self, batches: Sequence[Sequence[str]]) -> list[list[ScoredName]]:
        """Several requests' names in one forward pass, split back per request."""
        scored = self.score([name for names in batches for name in names])
        out, start = [], 0
        for names in batches:
            out.append(scored[start : start + len(names)])
            start += len(names)
        return out


class _Run:
    """One generate request in progress: its stream, its finds, its budget."""

    def __init__(self, engine: Engine, req: GenerateRequest) -> None:
        self.engine, self.req = engine, req
        self.prefix = tuple(engine.vocab.encode(req.prefix))
        self.seed = (
            req.seed if req.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        )
        self.generator = torch.Generator(device=engine.device).manual_seed(self.seed)
        self.budget = req.n * engine.budget_factor + 100 if req.filtered else req.n
        self.found: list[GeneratedName] = []
        self.seen: set[str] = set()
        self.sampled = 0
        self.idle_rounds = 0
        self.starved = False  # the filters let nothing through lately

    @property
    def done(self) -> bool:
        return self.starved or len(self.found) >= self.req.n or self.sampled >= self.budget

    def next_job(self) -> SampleJob:
        want = self.req.n - len(self.found)
        # oversample a little when filters reject some names
        size = math.ceil(want * 1.2) + 8 if self.req.filtered else want
        return SampleJob(
            min(self.budget - self.sampled, size), self.req, self.prefix, self.generator
        )

    def take(self, ids: list[list[int]], logprobs: list[float]) -> None:
        req, vocab = self.req, self.engine.vocab
        self.sampled += len(ids)
        before = len(self.found)
        for row, logprob in zip(ids, logprobs, strict=True):
            name = vocab.decode(row)
            in_corpus = name in self.engine.corpus_names
            if (req.exclude_existing and in_corpus) or (req.unique and name in self.seen):
                continue
            self.seen.add(name)
            self.found.append(GeneratedName(name, logprob, in_corpus))
            if len(self.found) == req.n:
                break
        self.idle_rounds = self.idle_rounds + 1 if len(self.found) == before else 0
        # greedy repeats itself; two empty rounds mean the filters starve it
        self.starved = req.temperature == 0 or self.idle_rounds >= 2

    def result(self) -> GenerateResult:
        complete = len(self.found) == self.req.n
        stopped: StopReason | None = None
        if not complete:
            stopped = "budget" if self.sampled >= self.budget else "no_new_names"
        return GenerateResult(self.found, complete, self.sampled, self.seed, stopped)

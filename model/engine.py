"""The inference engine: a loaded checkpoint that generates and scores names.

Knows names, characters and labels (through the checkpoint's vocab and label space) but
nothing of HTTP. Requests run through model/scheduler.py's continuous batching, here all
at once; a server drives a long-lived Scheduler itself. Generation with filters (exclude
names of the training corpus, no duplicates) samples until it has n names, a bounded
budget of samples is spent, or sampling stops finding new names; the result says which.

A checkpoint may hold a backward (right-to-left) network beside the forward one: it
serves `ends_with` and `contains` (model/constraints.py). Every name's logprob is the
forward network's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from model.device import pick_device
from model.incremental import IncrementalWaveNet
from model.labels import LabelError
from model.request import GeneratedName, GenerateRequest, GenerateResult
from model.runs import GenerateRun, ScoredName, ScoreRun
from model.scheduler import Scheduler
from model.vocab import UnknownCharacterError
from model.wavenet import WaveNet

# the request types, where callers of the engine have always found them
__all__ = ["Engine", "GenerateRequest", "GenerateResult", "GeneratedName", "ScoredName"]

Labels = Mapping[str, str | int] | None


class Engine:
    def __init__(self, checkpoint: Checkpoint, *, budget_factor: int = 20) -> None:
        model, backward = checkpoint.model, checkpoint.backward
        for network in (model, backward):
            if network is not None and not isinstance(network, WaveNet):
                raise CheckpointError(
                    f"checkpoint {checkpoint.path} holds a {type(network).__name__}; "
                    "the service serves WaveNet checkpoints"
                )
        if checkpoint.direction != "forward":
            raise CheckpointError(
                f"checkpoint {checkpoint.path} holds only a {checkpoint.direction} network; "
                "combine it with a forward one (python -m training.combine)"
            )
        assert isinstance(model, WaveNet) and (backward is None or isinstance(backward, WaveNet))
        self.checkpoint = checkpoint
        self.model = model.eval()
        self.backward = backward  # right to left, for ends_with and contains; or None
        self.backward_net = None if self.backward is None else IncrementalWaveNet(self.backward)
        self.vocab = checkpoint.vocab
        self.corpus_names = checkpoint.corpus_names
        self.device = next(self.model.parameters()).device
        self.net = IncrementalWaveNet(self.model)
        self.budget_factor = budget_factor  # filters may sample up to this many times n
        names = self.corpus_names
        # for estimates of a request's work: the length of a typical name
        self.mean_length = sum(map(len, names)) / len(names) if names else 6.0

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Engine:
        return cls(load_checkpoint(path, device=pick_device(device)))

    def label_ids(self, labels: Labels) -> tuple[int, ...] | None:
        """Label ids of the checkpoint's columns (unknown where not given), or None for a
        model without labels. Raises LabelError for a column or value it does not know,
        and for labels given to a model without them."""
        space = self.checkpoint.labels
        if space is None:
            if labels:
                raise LabelError("this checkpoint has no labels")
            return None
        return tuple(space.encode(labels or {}))

    def request_problems(self, req: GenerateRequest) -> list[tuple[str, str]]:
        """(field, message) for each text field with a character outside the vocabulary,
        and for ends_with or contains without a backward network."""
        problems = []
        for field in ("prefix", "ends_with", "contains"):
            try:
                self.vocab.encode(getattr(req, field))
            except UnknownCharacterError as e:
                problems.append((field, f"character {e.char!r} is not in the model's vocabulary"))
        for field in ("ends_with", "contains"):
            if getattr(req, field) and self.backward is None:
                problems.append((field, "this checkpoint has no backward network"))
        return problems

    def generate(self, req: GenerateRequest) -> GenerateResult:
        """Raises UnknownCharacterError for a text field outside the vocab, LabelError
        for labels the checkpoint does not know, ValueError for ends_with or contains
        without a backward network."""
        return self.generate_many([req])[0]

    def generate_many(self, reqs: Sequence[GenerateRequest]) -> list[GenerateResult]:
        """Several requests in shared model batches. A request's names depend only on the
        request, so it gets the same names alone or alongside others."""
        runs = [GenerateRun(self, req) for req in reqs]
        _run_all(Scheduler(self), runs)
        return [run.result() for run in runs]

    def score(self, names: Sequence[str], labels: Labels = None) -> list[ScoredName]:
        """Raises UnknownCharacterError naming the first bad name and character."""
        return self.score_many([names], [labels])[0]

    def score_many(
        self, batches: Sequence[Sequence[str]], labels: Sequence[Labels] | None = None
    ) -> list[list[ScoredName]]:
        """Several requests' names, each under its own labels (None: unknown)."""
        for names in batches:  # every problem before any work
            for name in names:
                self.vocab.encode(name)
        ids = [self.label_ids(lab) for lab in labels or [None] * len(batches)]
        runs = [ScoreRun(self, names, i) for names, i in zip(batches, ids, strict=True)]
        _run_all(Scheduler(self), runs)
        return [run.result() for run in runs]


def _run_all(scheduler: Scheduler, runs: Sequence[GenerateRun | ScoreRun]) -> None:
    for run in runs:
        scheduler.add(run)
    while len(scheduler):
        scheduler.step()

"""The inference engine: a loaded checkpoint that generates and scores names.

Knows names and characters (through the checkpoint's vocab) but nothing of HTTP.
Generation with filters (exclude names of the training corpus, no duplicates) samples in
rounds until it has n names or a bounded budget of samples is spent, then says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from model.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from model.device import pick_device
from model.sampling import IncrementalWaveNet, SamplingParams, sample
from model.scoring import NameScore, score_names
from model.wavenet import WaveNet


@dataclass(frozen=True)
class GenerateRequest:
    n: int = 10
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    prefix: str = ""
    min_length: int = 1
    max_length: int = 32
    exclude_existing: bool = False
    unique: bool = False


@dataclass(frozen=True)
class GeneratedName:
    name: str
    logprob: float  # under the model at temperature 1, end token included
    in_corpus: bool


@dataclass(frozen=True)
class GenerateResult:
    names: list[GeneratedName]
    complete: bool  # False when the filters left fewer than n within the budget
    sampled: int  # names sampled in all, rejected ones included
    seed: int


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
        params = SamplingParams(
            temperature=req.temperature,
            top_k=req.top_k,
            top_p=req.top_p,
            prefix=tuple(self.vocab.encode(req.prefix)),
            min_length=max(req.min_length, 1),
            max_length=req.max_length,
        )
        seed = req.seed if req.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        generator = torch.Generator(device=self.device).manual_seed(seed)
        filtering = req.exclude_existing or req.unique
        budget = req.n * self.budget_factor + 100 if filtering else req.n

        found: list[GeneratedName] = []
        seen: set[str] = set()
        sampled = 0
        idle_rounds = 0
        while len(found) < req.n and sampled < budget:
            want = req.n - len(found)
            # oversample a little when filters reject some names
            batch = min(budget - sampled, math.ceil(want * 1.2) + 8 if filtering else want)
            ids, logprobs = sample(self.net, batch, params, generator)
            sampled += batch
            before = len(found)
            for row, logprob in zip(ids, logprobs, strict=True):
                name = self.vocab.decode(row)
                in_corpus = name in self.corpus_names
                if (req.exclude_existing and in_corpus) or (req.unique and name in seen):
                    continue
                seen.add(name)
                found.append(GeneratedName(name, logprob, in_corpus))
                if len(found) == req.n:
                    break
            idle_rounds = idle_rounds + 1 if len(found) == before else 0
            if req.temperature == 0 or idle_rounds >= 2:
                break  # greedy repeats itself; two empty rounds mean the filters starve it
        return GenerateResult(found, len(found) == req.n, sampled, seed)

    def score(self, names: Sequence[str]) -> list[ScoredName]:
        """Raises UnknownCharacterError naming the first bad name and character."""
        scores = score_names(self.model, self.vocab, names)
        return [ScoredName(s, s.name in self.corpus_names) for s in scores]

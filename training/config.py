"""Everything a training run depends on, in one dataclass that is saved with the checkpoint.

The model's own configuration is nested, as the model defines it (model/registry.py);
its vocab_size is set from the corpus's vocabulary when the run starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from model import WaveNetConfig
from model.checkpoint import without_removed_options
from model.registry import MODEL_KINDS, ModelConfig, config_from_dict, kind_of
from model.vocab import BOUNDARY
from training.corpus import OnBad

Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["cosine", "step", "constant"]
Device = Literal["auto", "cpu", "cuda", "mps"]
# "names": whole names, every position a prediction. "windows": the lecture's batches,
# one random (name, position) prediction per row. "packed": the same names as "names",
# laid end to end in rows of 64 positions, so no time goes to padding (WaveNet only).
BatchUnit = Literal["names", "windows", "packed"]
# Labelled corpora: draw each (name, labels) row alike, or in proportion to log(1 + count),
# so common names come up more often without the commonest drowning out the rest.
RowWeights = Literal["uniform", "log_count"]
# "backward": the network reads names right to left (trained on reversed names, the same
# split by name and the same labels), for ends_with and contains (model/constraints.py).
Direction = Literal["forward", "backward"]


def oriented(name: str, direction: str) -> str:
    """A name as a network of `direction` reads it: reversed for "backward"."""
    return name[::-1] if direction == "backward" else name


@dataclass
class TrainConfig:
    corpus: str
    out: str
    model: ModelConfig = field(default_factory=WaveNetConfig)
    # data
    vocab: str = ""  # the characters names may hold; empty: those of the corpus
    lowercase: bool = True
    on_bad: OnBad = "error"
    keep_duplicates: bool = False  # the lecture's names.txt repeats 2,539 names and keeps them
    split_seed: int = 42
    direction: Direction = "forward"
    # labelled corpora (CSV): the rows' weights, and the chance that each label of a
    # training row is replaced by "unknown" (so one model takes any subset of labels)
    row_weights: RowWeights = "uniform"
    label_dropout: float = 0.15
    # optimisation
    optimizer: Optimizer = "adamw"
    lr: float = 5e-3
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.4
    momentum: float = 0.0  # SGD only
    schedule: Schedule = "cosine"
    warmup_steps: int = 100
    decay_steps: tuple[int, ...] = ()  # "step" schedule: multiply lr by decay_factor at each
    decay_factor: float = 0.1
    batch_size: int = 128  # names (or windows) per step
    batch_unit: BatchUnit = "names"
    steps: int = 4000
    time_budget_s: float = 0.0  # > 0: stop after this much training time; the schedule
    # then runs on whichever of steps or time is further along
    grad_clip: float = 0.0  # 0 disables
    ema_decay: float = 0.0  # > 0: evaluate and save a moving average of the weights
    # Dropout distillation (training/distill.py), after the main phase: fine-tune the best
    # weights, used without dropout, toward their own predictions with dropout. Up to
    # distill_steps steps; distill_s > 0 also caps its time, taken out of time_budget_s.
    distill_steps: int = 0
    distill_s: float = 0.0
    distill_lr: float = 3e-4
    distill_samples: int = 1  # dropout predictions averaged into each batch's target
    # evaluation and checkpoints
    eval_interval: int = 500
    patience: int = 0  # stop after this many evaluations without improvement; 0 disables
    diagnostics: bool = True  # activation, gradient and update health, into OUT/diagnostics
    diagnose_interval: int = 0  # capture every this many steps; 0: at every evaluation
    # run
    seed: int = 1337
    device: Device = "auto"
    threads: int = 0  # torch threads; 0 leaves torch's default
    progress: bool = True

    def __post_init__(self) -> None:
        self.decay_steps = tuple(int(s) for s in self.decay_steps)
        if not isinstance(self.model, tuple(MODEL_KINDS.values())):
            raise ValueError(f"model must be one of {sorted(MODEL_KINDS)}'s configs")
        for name in ("batch_size", "steps", "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if BOUNDARY in self.vocab:
            raise ValueError(f"vocab must not hold {BOUNDARY!r}: it marks the ends of names")
        if self.batch_unit == "packed" and not isinstance(self.model, WaveNetConfig):
            raise ValueError(
                "batch_unit 'packed' needs a WaveNet (an LSTM would read across names)"
            )
        if not 0.0 <= self.label_dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {self.label_dropout}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.distill_steps < 0 or self.distill_s < 0 or not self.distill_lr > 0:
            raise ValueError("distill_steps and distill_s must be >= 0, distill_lr positive")
        if self.distill_samples < 1:
            raise ValueError(f"distill_samples must be at least 1, got {self.distill_samples}")
        if self.time_budget_s > 0 and self.distill_s >= self.time_budget_s:
            raise ValueError(
                f"distill_s ({self.distill_s}) must leave time for training "
                f"(time_budget_s {self.time_budget_s})"
            )

    @property
    def main_budget_s(self) -> float:
        """Training time before distillation (0: no time budget)."""
        if self.time_budget_s <= 0:
            return 0.0
        return self.time_budget_s - (self.distill_s if self.distill_steps else 0.0)

    def with_vocab_size(self, vocab_size: int) -> TrainConfig:
        """This config, its model sized for a vocabulary of `vocab_size` ids."""
        return replace(self, model=replace(self.model, vocab_size=vocab_size))

    def with_label_sizes(self, label_sizes: tuple[int, ...]) -> TrainConfig:
        """This config, its model conditioned on label columns of `label_sizes` ids (a
        labelled corpus's; () for none). Only a WaveNet takes labels."""
        if not isinstance(self.model, WaveNetConfig):
            if label_sizes:
                raise ValueError("a labelled corpus needs a WaveNet (the LSTM takes no labels)")
            return self
        return replace(self, model=replace(self.model, label_sizes=tuple(label_sizes)))

    def lr_at(self, step: int, elapsed_s: float = 0.0) -> float:
        """Learning rate for optimizer step `step` (0-based), `elapsed_s` into training."""
        if self.schedule == "step":
            return self.lr * self.decay_factor ** sum(step >= s for s in self.decay_steps)
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        if self.main_budget_s > 0:
            progress = max(progress, elapsed_s / self.main_budget_s)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the model as {"kind": ..., its fields}, tuples as lists."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["model"] = model_to_dict(self.model)
        d["decay_steps"] = list(self.decay_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        if "model" in d:
            d["model"] = model_from_dict(d["model"])
        return cls(**d)


def model_to_dict(config: ModelConfig) -> dict[str, Any]:
    return {"kind": kind_of(config), **config.to_dict()}


def model_from_dict(d: dict[str, Any]) -> ModelConfig:
    """A model config from {"kind": ..., fields}; kind defaults to "wavenet". Options
    removed since (model/checkpoint.py's REMOVED_OPTIONS) are dropped at their "off"
    values, refused at others."""
    if not isinstance(d, dict):
        raise ValueError(f"model must be a table of model options, got {d!r}")
    options = dict(d)
    kind = options.pop("kind", "wavenet")
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    return config_from_dict(kind, without_removed_options(kind, options))

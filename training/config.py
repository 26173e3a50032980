"""Everything a training run depends on, in one dataclass that is saved with the checkpoint."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from model import WaveNetConfig
from model.lstm import LSTMConfig

ModelKind = Literal["wavenet", "lstm"]
Optimizer = Literal["adamw", "sgd"]
Schedule = Literal["cosine", "step", "constant"]
Device = Literal["auto", "cpu", "cuda", "mps"]
DistillTarget = Literal["ensemble", "ends"]


@dataclass
class TrainConfig:
    corpus: str
    out: str
    # model
    model: ModelKind = "wavenet"
    n_embd: int = 24
    n_hidden: int = 128
    kernel_sizes: tuple[int, ...] = field(default=(2, 2, 2))
    dilations: tuple[int, ...] = ()  # WaveNet only; empty: the lecture's tree
    stacks: int = 1
    gated: bool = False
    residual: bool = False
    skip: bool = False
    head_hidden: int = 0
    dropout: float = 0.0
    level_dropout: tuple[float, ...] = ()  # WaveNet only; one rate per level for dropout's
    dropout_mask: Literal["position", "name"] = "position"  # WaveNet only
    name_dropout: float = 0.0  # WaveNet only
    dropout_path: Literal["both", "split"] = "both"  # WaveNet only
    residual_dropout: float = 0.0  # WaveNet, dropout_path "split" only
    input_dropout: float = 0.0  # WaveNet only
    head_dropout: float = 0.0  # WaveNet only
    max_positions: int = 0  # WaveNet only
    head_positions: int = 0  # WaveNet only
    batchnorm: bool = True
    layernorm: bool = False  # WaveNet only, with batchnorm False
    n_layers: int = 2  # LSTM only
    # data
    lowercase: bool = True
    on_bad: Literal["error", "skip"] = "error"
    keep_duplicates: bool = False  # the lecture's names.txt repeats 2,539 names and keeps them
    split_seed: int = 42
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
    # "names": whole names, every position a prediction. "windows": the lecture's batches,
    # one random (name, position) prediction per row. "packed": the same names as "names",
    # laid end to end in rows of 64 positions, so no time goes to padding (WaveNet only).
    batch_unit: Literal["names", "windows", "packed"] = "names"
    steps: int = 4000
    time_budget_s: float = 0.0  # > 0: stop after this much training time; the schedule
    # then runs on whichever of steps or time is further along
    grad_clip: float = 0.0  # 0 disables
    # > 0: R-Drop (training/consistency.py): each batch twice, with this weight on the
    # symmetric KL between the two dropout samples' predictions (about 2x the step cost)
    consistency: float = 0.0
    ema_decay: float = 0.0  # > 0: evaluate and save a moving average of the weights
    # Dropout distillation (training/distill.py), after the main phase: fine-tune the best
    # weights, used without dropout, toward their own predictions with dropout. Up to
    # distill_steps steps; distill_s > 0 also caps its time, taken out of time_budget_s.
    distill_steps: int = 0
    distill_s: float = 0.0
    distill_lr: float = 3e-4
    distill_samples: int = 1  # dropout predictions averaged into each batch's target
    distill_truth: float = 0.0  # weight of the true next character in each target
    # "ensemble": the target is the dropout ensemble's prediction. "ends": only its P(end);
    # the characters keep the deterministic teacher's odds (see training/distill.py).
    distill_target: DistillTarget = "ensemble"
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
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        self.dilations = tuple(int(d) for d in self.dilations)
        self.decay_steps = tuple(int(s) for s in self.decay_steps)
        self.level_dropout = tuple(float(p) for p in self.level_dropout)
        for name in ("batch_size", "steps", "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_unit == "packed" and self.model != "wavenet":
            raise ValueError(
                "batch_unit 'packed' needs a WaveNet (an LSTM would read across names)"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.distill_steps < 0 or self.distill_s < 0 or not self.distill_lr > 0:
            raise ValueError("distill_steps and distill_s must be >= 0, distill_lr positive")
        if self.consistency < 0:
            raise ValueError(f"consistency must be >= 0, got {self.consistency}")
        if not 0.0 <= self.distill_truth < 1.0:
            raise ValueError(f"distill_truth must be in [0, 1), got {self.distill_truth}")
        if self.distill_target not in ("ensemble", "ends"):
            raise ValueError(
                f"distill_target must be 'ensemble' or 'ends', got {self.distill_target!r}"
            )
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

    def model_config(self, vocab_size: int) -> WaveNetConfig | LSTMConfig:
        if self.model == "lstm":
            return LSTMConfig(
                vocab_size=vocab_size,
                n_embd=self.n_embd,
                n_hidden=self.n_hidden,
                n_layers=self.n_layers,
                dropout=self.dropout,
            )
        return WaveNetConfig(
            vocab_size=vocab_size,
            n_embd=self.n_embd,
            n_hidden=self.n_hidden,
            kernel_sizes=self.kernel_sizes,
            dilations_override=self.dilations,
            stacks=self.stacks,
            gated=self.gated,
            residual=self.residual,
            skip=self.skip,
            head_hidden=self.head_hidden,
            dropout=self.dropout,
            level_dropout=self.level_dropout,
            dropout_mask=self.dropout_mask,
            name_dropout=self.name_dropout,
            dropout_path=self.dropout_path,
            residual_dropout=self.residual_dropout,
            input_dropout=self.input_dropout,
            head_dropout=self.head_dropout,
            max_positions=self.max_positions,
            head_positions=self.head_positions,
            batchnorm=self.batchnorm,
            layernorm=self.layernorm,
        )

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
        d = asdict(self)
        d["kernel_sizes"] = list(self.kernel_sizes)
        d["dilations"] = list(self.dilations)
        d["decay_steps"] = list(self.decay_steps)
        d["level_dropout"] = list(self.level_dropout)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**d)

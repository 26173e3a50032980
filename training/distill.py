"""Dropout distillation: teach the deterministic model what the dropout ensemble predicts.

A model trained with dropout is used without it, on the assumption that turning dropout
off approximates averaging over its masks. With heavy dropout on every level of a
WaveNet, the approximation is poor: on the lecture split our best WaveNet scores val
1.9266 deterministically, but 1.9153 when 16 dropout samples are averaged, and it
under-predicts the end of a name (the summed P(end) over val is 89% of the true count;
`python -m training.breakdown CKPT --dropout-samples 16` measures both).

The fix (Bulò, Porzi and Kontschieder, "Dropout distillation", ICML 2016): after
training, fine-tune the weights, used deterministically (eval mode: no dropout,
BatchNorm's running statistics), toward the predictions of the trained model with
dropout on. A few dropout samples per batch are enough (even one: cross-entropy against
a random target distribution is minimised by its mean, the ensemble's prediction; more
samples only make the target less noisy). The teacher is frozen; the student starts
from its weights; the model keeps its size and its cost.

`distill_best` is the trainer's phase: it distills the best checkpoint of a run and keeps
the student only if it scores better on val.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from model.checkpoint import load_checkpoint
from model.layers import MaskedBatchNorm
from model.registry import LanguageModel
from training.config import TrainConfig
from training.data import Batch, Splits, evaluate, forward


def with_dropout_only(model: LanguageModel) -> LanguageModel:
    """The model as the dropout ensemble's member: dropout on, BatchNorm on its running
    statistics (what the deterministic model normalizes with)."""
    model.train()
    for module in model.modules():
        if isinstance(module, MaskedBatchNorm):
            module.eval()
    return model


def predictions(model: LanguageModel, batch: Batch) -> Tensor:
    """Logits at the positions that have a target: (N, V)."""
    logits, _ = forward(model, batch, with_targets=False)
    return logits[batch[1] >= 0]


def distill(
    model: LanguageModel,
    batches: Iterator[Batch],
    *,
    steps: int,
    lr: float,
    samples: int = 1,
    time_budget_s: float = 0.0,
    eval_every: int = 0,
    on_eval: Callable[[int], None] | None = None,
) -> int:
    """Fine-tune `model` in place, deterministic, toward its own dropout predictions as
    they are now (the mean of `samples` dropout predictions per batch). Cosine learning
    rate from `lr` to 0 over `steps` or `time_budget_s` (whichever is further along).
    `on_eval(step)` runs every `eval_every` steps (0: never) and after the last step,
    with the model in eval mode. Returns the steps taken."""
    teacher = with_dropout_only(copy.deepcopy(model))
    teacher.requires_grad_(False)
    model.eval()  # the student: exactly the model that will be served
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    started, step, last_eval = time.perf_counter(), 0, 0
    while step < steps:
        elapsed = time.perf_counter() - started
        progress = step / steps
        if time_budget_s > 0:
            if elapsed >= time_budget_s:
                break
            progress = max(progress, elapsed / time_budget_s)
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        batch = next(batches)
        with torch.no_grad():
            draws = [predictions(teacher, batch).softmax(-1) for _ in range(samples)]
            target = torch.stack(draws).mean(dim=0)  # (N, V)
        log_probs = F.log_softmax(predictions(model, batch), dim=-1)  # (N, V)
        loss = -(target * log_probs).sum(dim=-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        step += 1
        if on_eval is not None and eval_every and step % eval_every == 0:
            on_eval(step)
            last_eval = step
    if on_eval is not None and step != last_eval:
        on_eval(step)  # the last weights
    return step


def distill_best(
    cfg: TrainConfig,
    out: Path,
    data: Splits,
    best_val: float,
    batches: Iterator[Batch],
    save: Callable[[LanguageModel, float], None],
    time_budget_s: float,
) -> dict[str, Any]:
    """Dropout distillation of the best checkpoint in `out`. The student replaces it (by
    `save`) only if its val loss is lower; `out` is written once, at the end, so an
    interrupted distillation restarts from the same teacher."""
    student = load_checkpoint(out, device=data.train.x.device).model
    best_state: dict[str, Tensor] | None = None
    student_best = float("inf")

    def judge(step: int) -> None:
        nonlocal best_state, student_best
        val = evaluate(student, data.val)
        if val < student_best:
            student_best = val
            best_state = {k: v.detach().clone() for k, v in student.state_dict().items()}
        tqdm.write(f"distill {step:>5} | val {val:.4f} | teacher {best_val:.4f}")

    steps = distill(
        student,
        batches,
        steps=cfg.distill_steps,
        lr=cfg.distill_lr,
        samples=cfg.distill_samples,
        time_budget_s=time_budget_s,
        eval_every=cfg.eval_interval,
        on_eval=judge,
    )
    if best_state is not None and student_best < best_val:
        student.load_state_dict(best_state)
        save(student, student_best)
    return {"steps": steps, "teacher_val": best_val, "val": min(student_best, best_val)}

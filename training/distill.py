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

`ends_only`: the dropout ensemble is not better everywhere. With R-Drop at dropout 0.25,
8 averaged masks score val ends 0.726 against 0.772 deterministically, but the characters
2.1086 against 2.1024. This target takes P(end) from the ensemble and shares the rest
among the characters in the proportions the deterministic teacher gives them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from model.checkpoint import LanguageModel
from model.wavenet import MaskedBatchNorm
from training.data import Batch, forward

END = 0  # the boundary token's id: as a target, the end of a name


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


def with_end_of(source: Tensor, probs: Tensor) -> Tensor:
    """`probs` (N, V) with P(end) taken from `source`, the characters rescaled to the rest."""
    end = source[:, END : END + 1]  # (N, 1)
    chars = probs.clone()
    chars[:, END] = 0.0
    chars = chars * ((1.0 - end) / chars.sum(dim=-1, keepdim=True).clamp_min(1e-12))
    chars[:, END : END + 1] = end
    return chars


def distill(
    model: LanguageModel,
    batches: Iterator[Batch],
    *,
    steps: int,
    lr: float,
    samples: int = 1,
    truth: float = 0.0,
    ends_only: bool = False,
    time_budget_s: float = 0.0,
    eval_every: int = 0,
    on_eval: Callable[[int], None] | None = None,
) -> int:
    """Fine-tune `model` in place, deterministic, toward its own dropout predictions as
    they are now (the mean of `samples` dropout predictions per batch; with `truth` > 0,
    that mean mixed with the one-hot true next character at weight `truth`; with
    `ends_only`, that mean's P(end) and the deterministic teacher's odds between the
    characters). Cosine learning
    rate from `lr` to 0 over `steps` or `time_budget_s` (whichever is further along).
    `on_eval(step)` runs every `eval_every` steps (0: never) and after the last step,
    with the model in eval mode. Returns the steps taken."""
    teacher = with_dropout_only(copy.deepcopy(model))
    teacher.requires_grad_(False)
    plain_teacher = copy.deepcopy(model).eval().requires_grad_(False) if ends_only else None
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
            if plain_teacher is not None:
                target = with_end_of(target, predictions(plain_teacher, batch).softmax(-1))
            if truth:
                true_next = F.one_hot(batch[1][batch[1] >= 0], target.shape[-1])
                target = torch.lerp(target, true_next.to(target.dtype), truth)
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

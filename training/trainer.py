"""The training loop: corpus in, checkpoint out.

`OUT/` becomes the final checkpoint (the best weights by validation loss, with train,
val and test losses). While training, `OUT/last/` holds the latest state (weights,
optimizer and RNG; training/resume.py) so an interrupted run resumes exactly where it was
saved; it is removed when the run finishes.
"""

from __future__ import annotations

import contextlib
import random
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from model import Vocab, WaveNet
from model.checkpoint import load_checkpoint, save_checkpoint
from model.device import pick_device
from model.registry import LanguageModel, build_model
from training import distributed, health
from training.averaging import WeightAverage
from training.calibrate import calibrate, validation_rows
from training.config import TrainConfig, oriented
from training.corpus import Corpus
from training.data import Batch, Batches, Splits, evaluate, forward, prepare_data
from training.diagnostics import Diagnostics
from training.distill import distill_best
from training.distributed import SINGLE, Ranks
from training.resume import LAST, Progress, TrainState, restore, save_last

DIAGNOSTICS = "diagnostics"
EvalHook = Callable[[int, float, float], None]  # (step, train_loss, val_loss)


@dataclass
class TrainResult:
    out: Path
    metrics: dict[str, Any]
    model: LanguageModel


def make_optimizer(model: LanguageModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm parameters and biases, as is usual.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def fresh_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    """A new model, optimizer and random streams, all seeded from `cfg.seed`."""
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    batch_rng = torch.Generator().manual_seed(cfg.seed)
    return TrainState(model, make_optimizer(model, cfg), batch_rng, average)


def run_record(cfg: TrainConfig, corpus: Corpus, data: Splits) -> dict[str, Any]:
    """What meta.json says of how the run was made: options, command, corpus, split."""
    command = None
    if Path(sys.argv[0]).parent.name == "training":
        command = "python -m training " + shlex.join(sys.argv[1:])
    return {
        "direction": cfg.direction,
        "training": {"config": cfg.to_dict(), "command": command},
        "corpus": {"path": str(cfg.corpus), **corpus.fingerprint()},
        "split": {"seed": cfg.split_seed, **data.sizes},
    }


def train_step(
    state: TrainState,
    batch: Batch,
    lr: float,
    cfg: TrainConfig,
    diag: Diagnostics | None,
    ranks: Ranks = SINGLE,
) -> tuple[float, list[str]]:
    """One optimizer step at rate `lr`: (the batch's loss, diagnostics' warnings). With
    `diag`, the step is measured (training/diagnostics.py). Under torchrun
    (training/distributed.py) this rank's slice of the batch goes through DDP."""
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    with diag.capture() if diag is not None else contextlib.nullcontext():
        if state.ddp is None:
            _, loss = forward(state.model, batch)
            assert loss is not None
            scaled = loss
        else:
            batch, scale = distributed.shard(batch, ranks)
            _, loss = forward(state.ddp, batch)
            assert loss is not None
            scaled = loss * scale
        state.optimizer.zero_grad(set_to_none=True)
        scaled.backward()  # type: ignore[no-untyped-call]
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip)
    before = diag.snapshot() if diag is not None else None
    state.optimizer.step()
    if state.average is not None:
        state.average.update()
    warnings = []
    if diag is not None:
        warnings = diag.record(state.progress.step + 1, lr, before, lr / cfg.lr)
    return loss.item(), warnings


def judge(
    state: TrainState, data: Splits, save_best: Callable[[LanguageModel, float], None]
) -> float:
    """Val loss of the weights kept (the average, with weight averaging); a new best is
    saved as the checkpoint."""
    weights = state.average.applied() if state.average is not None else contextlib.nullcontext()
    with weights:
        val = evaluate(state.model, data.val)
        if val < state.progress.best_val:
            save_best(state.model, val)
    return val


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    on_eval: EvalHook | None = None,
) -> TrainResult:
    """Train per `cfg` into `cfg.out`. With `resume`, continue from `cfg.out/last`.
    `stop_after` ends the run early after that many steps, leaving `last` in place, as
    an interruption would (used to test resuming). Under torchrun every rank calls this;
    only rank 0 evaluates and writes (training/distributed.py)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ranks = distributed.from_env()
    device = distributed.start(ranks, pick_device(cfg.device))
    out = Path(cfg.out)
    corpus, vocab, data = prepare_data(cfg, device)
    cfg = cfg.with_vocab_size(vocab.size)
    cfg = cfg.with_label_sizes(data.labels.sizes if data.labels is not None else ())
    state = fresh_state(cfg, device)
    if resume:
        restore(out, state, cfg)
    if ranks.active:
        state.ddp = distributed.wrap(state.model, ranks)
    p = state.progress
    record = run_record(cfg, corpus, data)

    def save_best(model: LanguageModel, val: float) -> None:
        meta = {**record, "metrics": {"best_val_loss": val, "steps": p.step, "partial": True}}
        save_checkpoint(out, model, vocab, meta=meta, corpus_names=corpus.names, labels=data.labels)

    def checkpoint_last() -> None:
        save_last(out, state, cfg, record, vocab, corpus.names, data.labels)

    batches = Batches(cfg, data.train, state.batch_rng)
    diag = Diagnostics(state.model, out / DIAGNOSTICS) if cfg.diagnostics else None
    if not ranks.main:
        diag = None
    diagnose_every = cfg.diagnose_interval or cfg.eval_interval
    show = cfg.progress and ranks.main
    bar = tqdm(total=cfg.steps, initial=p.step, disable=not show, unit="step")
    say = bar.write if ranks.main else (lambda line: None)
    started = time.perf_counter() - p.elapsed
    timed = ranks.active and cfg.time_budget_s > 0

    def elapsed() -> float:
        # ranks' clocks differ: rank 0's decides the lr and the time budget for all
        seconds = time.perf_counter() - started
        return distributed.share(seconds, ranks, device) if timed else seconds

    state.model.train()
    loss_ema: float | None = None
    stopped_early = False
    while not p.main_done and p.step < cfg.steps:
        lr = cfg.lr_at(p.step, elapsed())
        watch = diag if diag is not None and (p.step + 1) % diagnose_every == 0 else None
        loss, warnings = train_step(state, batches.next(), lr, cfg, watch, ranks)
        p.step += 1
        if p.step > cfg.warmup_steps:  # during warmup the update ratios are off on purpose
            health.report(warnings, p.step, say)
        if diag is not None and p.step % 10 == 0:
            diag.log_losses(p.step, train_loss=loss)
        loss_ema = loss if loss_ema is None else 0.98 * loss_ema + 0.02 * loss
        bar.update(1)
        if p.step % 50 == 0:
            bar.set_postfix(loss=f"{loss_ema:.4f}", lr=f"{lr:.2e}", refresh=False)

        out_of_time = 0 < cfg.main_budget_s <= elapsed()
        if p.step % cfg.eval_interval == 0 or p.step == cfg.steps or out_of_time:
            distributed.average_buffers(state.model, ranks)
            val = judge(state, data, save_best) if ranks.main else 0.0
            val = distributed.share(val, ranks, device)  # so every rank stops alike
            say(p.evaluated(val, loss_ema, time.perf_counter() - started))
            if on_eval is not None:
                on_eval(p.step, loss_ema, val)
            if diag is not None:
                diag.log_losses(p.step, val_loss=val)
            if ranks.main:
                checkpoint_last()
            if cfg.patience and p.stale_evals >= cfg.patience:
                stopped_early = True
                say(f"early stop: {p.stale_evals} evaluations without improvement")
                break
            if out_of_time:
                say(f"time budget of {cfg.main_budget_s:.0f}s spent")
                break
        if stop_after is not None and p.step >= stop_after:
            bar.close()
            distributed.stop(ranks)
            return TrainResult(out, {"interrupted_at": p.step}, state.model)
    bar.close()
    distributed.stop(ranks)  # the rest (distillation, final measures) is rank 0's alone
    if not ranks.main:
        return TrainResult(out, {"rank": ranks.rank}, state.model)
    state.ddp = None
    if diag is not None and not p.main_done:
        diag.plot()

    distilled: dict[str, Any] = {}
    if cfg.distill_steps:
        if not p.main_done:  # a resumed run that stopped while distilling starts it again
            p.main_done = True
            p.elapsed = time.perf_counter() - started
            checkpoint_last()
        # With a time budget, distillation gets whatever the main phase left of it.
        budget = cfg.distill_s
        if cfg.time_budget_s:
            budget = max(cfg.time_budget_s - (time.perf_counter() - started), 1e-3)
        endless = iter(lambda: batches.next(windows=False), None)
        distilled = distill_best(cfg, out, data, p.best_val, endless, save_best, budget)
        p.best_val = min(p.best_val, distilled["val"])
    p.elapsed = time.perf_counter() - started
    metrics = {"stopped_early": stopped_early, **({"distill": distilled} if distilled else {})}
    return finish(out, record, vocab, corpus, data, p, metrics, device)


def finish(
    out: Path,
    record: dict[str, Any],
    vocab: Vocab,
    corpus: Corpus,
    data: Splits,
    p: Progress,
    extra: dict[str, Any],
    device: torch.device,
) -> TrainResult:
    """The final checkpoint: the best weights, measured on every split; OUT/last removed."""
    best = load_checkpoint(out, device=device).model
    labels, labelled, meta = data.labels, {}, {**record, "history": p.history}
    train_rows = data.train
    if labels is not None:  # the same rows with every label unknown; posteriors calibrated
        assert isinstance(best, WaveNet)
        # many rows a name: the train loss on a fixed sample of rows, as many as val's
        train_rows = data.train.sample(len(data.val))
        labelled = {
            "train_loss_rows": len(train_rows),
            "val_loss_unlabeled": evaluate(best, data.val, labels=False),
            "test_loss_unlabeled": evaluate(best, data.test, labels=False),
        }
        rows = validation_rows(corpus, record["split"]["seed"])
        rows = [(oriented(n, record["direction"]), v, c) for n, v, c in rows]
        labels, meta["calibration"] = calibrate(best, vocab, labels, rows)
    metrics = {
        "train_loss": evaluate(best, train_rows),
        "val_loss": evaluate(best, data.val),
        "test_loss": evaluate(best, data.test),
        **labelled,
        "best_val_loss": p.best_val,
        "best_step": p.best_step,
        "steps": p.step,
        **extra,
        "num_params": best.num_params(),
        "wall_time_s": round(p.elapsed, 2),
        "device": str(device),
    }
    meta["metrics"] = metrics
    save_checkpoint(out, best, vocab, meta=meta, corpus_names=corpus.names, labels=labels)
    shutil.rmtree(out / LAST, ignore_errors=True)
    return TrainResult(out, metrics, best)

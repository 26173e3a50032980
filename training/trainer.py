"""The training loop: corpus in, checkpoint out.

`OUT/` becomes the final checkpoint (the best weights by validation loss, with train,
val and test losses). While training, `OUT/last/` holds the latest state (weights,
optimizer and RNG) so an interrupted run resumes exactly where it was saved; it is
removed when the run finishes.
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
from torch import Tensor
from tqdm import tqdm

from model import Vocab, WaveNet, WaveNetConfig
from model.checkpoint import (
    LanguageModel,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)
from model.device import pick_device
from model.lstm import CharLSTM
from training.averaging import WeightAverage
from training.config import TrainConfig
from training.consistency import rdrop_loss
from training.corpus import Corpus, load_corpus
from training.data import Batch, EncodedNames, forward, split_names
from training.diagnostics import Diagnostics
from training.distill import distill

LAST = "last"
PACKED_ROW = 64  # positions per row with batch_unit "packed"


def build_model(cfg: TrainConfig, vocab_size: int) -> LanguageModel:
    config = cfg.model_config(vocab_size)
    return WaveNet(config) if isinstance(config, WaveNetConfig) else CharLSTM(config)


@torch.no_grad()
def evaluate(model: LanguageModel, data: EncodedNames, batch_names: int = 4096) -> float:
    """Mean loss per predicted character over the whole set, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in data.chunks(batch_names):
        _, loss = model(x, y)
        assert loss is not None
        n = int((y >= 0).sum())
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total / count


@dataclass
class Splits:
    train: EncodedNames
    val: EncodedNames
    test: EncodedNames
    sizes: dict[str, int]


def prepare_data(cfg: TrainConfig, device: torch.device) -> tuple[Corpus, Vocab, Splits]:
    corpus = load_corpus(
        cfg.corpus,
        lowercase=cfg.lowercase,
        on_bad=cfg.on_bad,
        keep_duplicates=cfg.keep_duplicates,
    )
    vocab = Vocab.from_names(corpus.names)
    train, val, test = split_names(corpus.names, seed=cfg.split_seed)
    if not val or not test:
        raise ValueError(f"corpus {cfg.corpus} is too small to split ({len(corpus.names)} names)")
    sizes = {"train": len(train), "val": len(val), "test": len(test)}
    train_e, val_e, test_e = (EncodedNames.build(s, vocab).to(device) for s in (train, val, test))
    return corpus, vocab, Splits(train_e, val_e, test_e, sizes)


# -- optimizer and RNG state as flat tensors (safetensors) plus JSON scalars ------------


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


def pack_train_state(
    optimizer: torch.optim.Optimizer, batch_rng: torch.Generator
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors = {
        f"optim.{pid}.{key}": torch.as_tensor(value)
        for pid, state in sd["state"].items()
        for key, value in state.items()
        if value is not None
    }
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.batches"] = batch_rng.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    scalars = {"param_groups": sd["param_groups"], "python_random": random.getstate()}
    return tensors, scalars


def unpack_train_state(
    tensors: dict[str, Tensor],
    scalars: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    batch_rng: torch.Generator,
) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    batch_rng.set_state(tensors["rng.batches"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    version, internal, gauss = scalars["python_random"]
    random.setstate((version, tuple(internal), gauss))


# -- the loop --------------------------------------------------------------------------

DIAGNOSTICS = "diagnostics"
MAX_WARNINGS = 3  # per capture: enough to see a trend without flooding the log


def report_health(warnings: list[str], step: int, cfg: TrainConfig, bar: tqdm) -> None:
    """Print what the diagnostics flag, except during warmup, when the update ratios are
    expected to be off."""
    if step <= cfg.warmup_steps or not warnings:
        return
    for warning in warnings[:MAX_WARNINGS]:
        bar.write(f"warning at step {step}: {warning}")
    if len(warnings) > MAX_WARNINGS:
        bar.write(f"warning at step {step}: ... and {len(warnings) - MAX_WARNINGS} more")


@dataclass
class TrainResult:
    out: Path
    metrics: dict[str, Any]
    model: LanguageModel


EvalHook = Callable[[int, float, float], None]  # (step, train_loss, val_loss)


def distill_best(
    cfg: TrainConfig,
    out: Path,
    data: Splits,
    best_val: float,
    next_batch: Callable[[], Batch],
    save: Callable[[LanguageModel, float], None],
    time_budget_s: float,
) -> dict[str, Any]:
    """Dropout distillation of the best checkpoint in `out` (training/distill.py). The
    student replaces it only if its val loss is lower; `out` is written once, at the end,
    so an interrupted distillation restarts from the same teacher."""
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

    batches = iter(next_batch, None)  # endless
    steps = distill(
        student,
        batches,
        steps=cfg.distill_steps,
        lr=cfg.distill_lr,
        samples=cfg.distill_samples,
        truth=cfg.distill_truth,
        ends_only=cfg.distill_target == "ends",
        time_budget_s=time_budget_s,
        eval_every=cfg.eval_interval,
        on_eval=judge,
    )
    if best_state is not None and student_best < best_val:
        student.load_state_dict(best_state)
        save(student, student_best)
    return {"steps": steps, "teacher_val": best_val, "val": min(student_best, best_val)}


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    on_eval: EvalHook | None = None,
) -> TrainResult:
    """Train per `cfg` into `cfg.out`. With `resume`, continue from `cfg.out/last`.
    `stop_after` ends the run early after that many steps, leaving `last` in place, as
    an interruption would (used to test resuming)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    out = Path(cfg.out)
    corpus, vocab, data = prepare_data(cfg, device)

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    batch_rng = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg, vocab.size).to(device)
    optimizer = make_optimizer(model, cfg)
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    step, best_val, best_step, stale_evals, elapsed = 0, float("inf"), -1, 0, 0.0
    main_done = False  # the main phase is over (only distillation, if any, is left)
    history: list[dict[str, float]] = []  # one entry per evaluation, for loss curves

    if resume and (out / LAST / "meta.json").exists():
        last = load_checkpoint(out / LAST, device=device)
        saved = last.meta["train_state"]
        if saved["config"] != cfg.to_dict():
            raise ValueError(f"{out / LAST} was written with other training options; cannot resume")
        model.load_state_dict(last.model.state_dict())
        train_state = load_train_state(out / LAST)
        unpack_train_state(train_state, saved, optimizer, batch_rng)
        if average is not None:
            average.load_state(train_state)
        step, best_val, best_step = saved["step"], saved["best_val"], saved["best_step"]
        stale_evals, elapsed = saved["stale_evals"], saved["elapsed"]
        history = saved["history"]
        main_done = saved.get("main_done", False)

    record: dict[str, Any] = {
        "training": {
            "config": cfg.to_dict(),
            "command": "python -m training " + shlex.join(sys.argv[1:])
            if Path(sys.argv[0]).parent.name == "training"
            else None,
        },
        "corpus": {"path": str(cfg.corpus), **corpus.fingerprint()},
        "split": {"seed": cfg.split_seed, **data.sizes},
    }

    def save_best(model: LanguageModel, val: float) -> None:
        metrics = {"best_val_loss": val, "steps": step, "partial": True}
        save_checkpoint(
            out, model, vocab, meta={**record, "metrics": metrics}, corpus_names=corpus.names
        )

    def save_last() -> None:
        tensors, scalars = pack_train_state(optimizer, batch_rng)
        if average is not None:
            tensors.update(average.state())
        scalars.update(
            config=cfg.to_dict(),
            step=step,
            best_val=best_val,
            best_step=best_step,
            stale_evals=stale_evals,
            elapsed=elapsed,
            history=history,
            main_done=main_done,
        )
        meta = {**record, "train_state": scalars}
        save_checkpoint(
            out / LAST, model, vocab, meta=meta, corpus_names=corpus.names, train_state=tensors
        )

    windows = data.train.window_index() if cfg.batch_unit == "windows" else None
    # packed rows: room for a few names each, and for the longest one
    packed_row = max(PACKED_ROW, int(data.train.lengths.max()) + 1)

    def next_batch(windows: Tensor | None) -> Batch:
        """A random training batch: lecture windows when given, else whole names."""
        if windows is not None:
            picks = torch.randint(len(windows), (cfg.batch_size,), generator=batch_rng)
            return (*data.train.window_batch(windows[picks].to(device)), None)
        rows = torch.randint(len(data.train), (cfg.batch_size,), generator=batch_rng)
        if cfg.batch_unit == "packed":
            return data.train.packed_batch(rows.to(device), packed_row)
        return (*data.train.batch(rows.to(device)), None)

    diag = Diagnostics(model, out / DIAGNOSTICS) if cfg.diagnostics else None
    diagnose_every = cfg.diagnose_interval or cfg.eval_interval
    model.train()
    bar = tqdm(
        total=cfg.steps, initial=step, disable=not cfg.progress, unit="step", dynamic_ncols=True
    )
    started = time.perf_counter() - elapsed
    loss_ema: float | None = None
    stopped_early = False
    while not main_done and step < cfg.steps:
        lr = cfg.lr_at(step, time.perf_counter() - started)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next_batch(windows)
        watch = diag is not None and (step + 1) % diagnose_every == 0
        with diag.capture() if watch and diag is not None else contextlib.nullcontext():
            if cfg.consistency > 0:
                loss, cross_entropy = rdrop_loss(model, batch, cfg.consistency)
            else:
                _, plain_loss = forward(model, batch)
                assert plain_loss is not None
                loss = cross_entropy = plain_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        before = diag.snapshot() if watch and diag is not None else None
        optimizer.step()
        if average is not None:
            average.update()
        step += 1

        loss_value = cross_entropy.item()
        if diag is not None:
            if watch:
                report_health(diag.record(step, lr, before, lr / cfg.lr), step, cfg, bar)
            if step % 10 == 0:
                diag.log_losses(step, train_loss=loss_value)
        loss_ema = loss_value if loss_ema is None else 0.98 * loss_ema + 0.02 * loss_value
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss_ema:.4f}", lr=f"{lr:.2e}", refresh=False)

        out_of_time = bool(cfg.main_budget_s) and (
            time.perf_counter() - started >= cfg.main_budget_s
        )
        if step % cfg.eval_interval == 0 or step == cfg.steps or out_of_time:
            # With weight averaging, the averaged weights are the ones judged and kept.
            weights = average.applied() if average is not None else contextlib.nullcontext()
            with weights:
                val = evaluate(model, data.val)
                if val < best_val:
                    save_best(model, val)
            elapsed = time.perf_counter() - started
            history.append(
                {
                    "step": step,
                    "train_loss": loss_ema,
                    "val_loss": val,
                    "elapsed_s": round(elapsed, 2),
                }
            )
            if val < best_val:
                best_val, best_step, stale_evals = val, step, 0
            else:
                stale_evals += 1
            bar.write(
                f"step {step:>7} | train {loss_ema:.4f} | val {val:.4f} | "
                f"best {best_val:.4f} @ {best_step} | {elapsed:.1f}s"
            )
            if on_eval is not None:
                on_eval(step, loss_ema, val)
            if diag is not None:
                diag.log_losses(step, val_loss=val)
            save_last()
            if cfg.patience and stale_evals >= cfg.patience:
                stopped_early = True
                bar.write(f"early stop: {stale_evals} evaluations without improvement")
                break
            if out_of_time:
                bar.write(f"time budget of {cfg.main_budget_s:.0f}s spent")
                break
        if stop_after is not None and step >= stop_after:
            bar.close()
            return TrainResult(out, {"interrupted_at": step}, model)
    bar.close()
    if diag is not None and not main_done:
        diag.plot()

    distilled: dict[str, Any] = {}
    if cfg.distill_steps:
        if not main_done:  # a resumed run that stopped while distilling starts it again
            main_done = True
            elapsed = time.perf_counter() - started
            save_last()
        # With a time budget, distillation gets whatever the main phase left of it.
        budget = cfg.distill_s
        if cfg.time_budget_s:
            budget = max(cfg.time_budget_s - (time.perf_counter() - started), 1e-3)
        distilled = distill_best(
            cfg, out, data, best_val, lambda: next_batch(None), save_best, budget
        )
        best_val = min(best_val, distilled["val"])
    elapsed = time.perf_counter() - started

    # The final checkpoint: best weights, measured on every split.
    best = load_checkpoint(out, device=device).model
    metrics = {
        "train_loss": evaluate(best, data.train),
        "val_loss": evaluate(best, data.val),
        "test_loss": evaluate(best, data.test),
        "best_val_loss": best_val,
        "best_step": best_step,
        "steps": step,
        "stopped_early": stopped_early,
        **({"distill": distilled} if distilled else {}),
        "num_params": best.num_params(),
        "wall_time_s": round(elapsed, 2),
        "device": str(device),
    }
    record["history"] = history
    save_checkpoint(
        out, best, vocab, meta={**record, "metrics": metrics}, corpus_names=corpus.names
    )
    shutil.rmtree(out / LAST, ignore_errors=True)
    return TrainResult(out, metrics, best)

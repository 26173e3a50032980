"""Dropout distillation: the deterministic model moves toward the dropout ensemble, and
the trainer's distillation phase keeps the better weights and survives interruption."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import training.distill as distill_module
from model import WaveNet, WaveNetConfig
from model.checkpoint import load_checkpoint
from tests.training.test_trainer import assert_same_weights, tiny
from training.config import TrainConfig
from training.data import Batch
from training.distill import distill, with_dropout_only
from training.trainer import train

CONFIG = WaveNetConfig(
    n_embd=8,
    n_hidden=32,
    kernel_sizes=(2, 2),
    gated=True,
    residual=True,
    skip=True,
    head_hidden=32,
    dropout=0.5,
)


def names_batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 27, (64, 6), generator=g)
    x[:, 0] = 0  # every name starts with the boundary token
    y = torch.roll(x, -1, dims=1)
    y[:, -1] = 0
    return Batch(x, y)


@torch.no_grad()
def ensemble_gap(model: WaveNet, x: torch.Tensor, samples: int = 64) -> float:
    """KL(dropout ensemble || deterministic model), averaged over positions."""
    member = with_dropout_only(model)
    mean = torch.stack([member(x)[0].softmax(-1) for _ in range(samples)]).mean(0)
    model.eval()
    log_q = model(x)[0].log_softmax(-1)
    return float(F.kl_div(log_q, mean, reduction="batchmean", log_target=False))


def test_with_dropout_only_samples_but_keeps_batchnorm_statistics() -> None:
    torch.manual_seed(0)
    model = WaveNet(CONFIG)
    x = names_batch(0)[0]
    running = [b.clone() for b in model.buffers()]
    member = with_dropout_only(model)
    first, second = member(x)[0], member(x)[0]
    assert not torch.allclose(first, second)  # dropout is on
    assert all(torch.equal(a, b) for a, b in zip(running, model.buffers(), strict=True))


def test_distillation_moves_the_deterministic_model_toward_the_ensemble() -> None:
    torch.manual_seed(0)
    model = WaveNet(CONFIG)
    with torch.no_grad():  # a model whose dropout matters: larger weights than at init
        for p in model.parameters():
            p.mul_(3.0)
    x = names_batch(1)[0]
    before = ensemble_gap(model, x)
    evaluated: list[int] = []
    steps = distill(
        model,
        itertools.cycle([names_batch(1)]),
        steps=60,
        lr=3e-3,
        eval_every=25,
        on_eval=evaluated.append,
    )
    assert steps == 60 and evaluated == [25, 50, 60]
    assert not model.training  # left as it will be served
    assert ensemble_gap(model, x) < 0.8 * before  # 0.69 of it when written


def test_distillation_stops_when_its_time_is_spent() -> None:
    model = WaveNet(CONFIG)
    evaluated: list[int] = []
    steps = distill(
        model,
        itertools.cycle([names_batch(2)]),
        steps=10**6,
        lr=1e-3,
        time_budget_s=0.5,
        on_eval=evaluated.append,
    )
    assert 0 < steps < 10**6 and evaluated == [steps]  # the last weights are judged


def test_distill_time_comes_out_of_the_budget() -> None:
    cfg = TrainConfig(corpus="c", out="o", time_budget_s=900, distill_steps=100, distill_s=100)
    assert cfg.main_budget_s == 800
    assert TrainConfig(corpus="c", out="o", time_budget_s=900, distill_s=100).main_budget_s == 900
    with pytest.raises(ValueError, match="distill_s"):
        TrainConfig(corpus="c", out="o", time_budget_s=100, distill_steps=5, distill_s=100)
    with pytest.raises(ValueError, match="distill"):
        TrainConfig(corpus="c", out="o", distill_steps=-1)


def distilled(corpus: Path, out: Path) -> TrainConfig:
    return tiny(
        corpus,
        out,
        batch_unit="packed",
        gated=True,
        residual=True,
        skip=True,
        head_hidden=32,
        dropout=0.3,
        distill_steps=20,
        distill_lr=1e-3,
    )


def test_training_reports_distillation_and_keeps_the_better_weights(
    small_corpus: Path, tmp_path: Path
) -> None:
    result = train(distilled(small_corpus, tmp_path / "run"))
    m = load_checkpoint(tmp_path / "run").meta["metrics"]
    assert m["distill"]["steps"] == 20
    assert m["distill"]["val"] <= m["distill"]["teacher_val"]
    assert m["val_loss"] == pytest.approx(m["distill"]["val"], abs=1e-5)
    assert result.metrics == m
    assert not (tmp_path / "run" / "last").exists()


def test_run_interrupted_while_distilling_resumes_from_the_same_teacher(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train(distilled(small_corpus, tmp_path / "whole"))

    def interrupted(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    cfg = distilled(small_corpus, tmp_path / "resumed")
    with monkeypatch.context() as patch:
        patch.setattr(distill_module, "distill", interrupted)
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    assert (tmp_path / "resumed" / "last").exists()
    train(cfg, resume=True)
    assert_same_weights(tmp_path / "whole", tmp_path / "resumed")
    whole = load_checkpoint(tmp_path / "whole").meta["metrics"]
    resumed = load_checkpoint(tmp_path / "resumed").meta["metrics"]
    assert resumed["steps"] == whole["steps"] == 40
    assert resumed["distill"] == whole["distill"]

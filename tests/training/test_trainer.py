"""Training runs end to end on a small corpus; resuming gives the same weights."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from tests.conftest import REPO
from training.__main__ import build_parser
from training.__main__ import main as cli_main
from training.config import TrainConfig
from training.trainer import train


def tiny(corpus: Path, out: Path, **overrides: object) -> TrainConfig:
    options: dict = dict(
        corpus=str(corpus),
        out=str(out),
        n_embd=8,
        n_hidden=32,
        steps=40,
        batch_size=32,
        eval_interval=10,
        warmup_steps=5,
        progress=False,
        threads=1,
    )
    options.update(overrides)
    return TrainConfig(**options)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_run_writes_a_complete_checkpoint(small_corpus: Path, tmp_path: Path) -> None:
    result = train(tiny(small_corpus, tmp_path / "run"))
    loaded = load_checkpoint(tmp_path / "run")
    m = loaded.meta["metrics"]
    assert {"train_loss", "val_loss", "test_loss", "num_params", "steps", "wall_time_s"} <= set(m)
    assert m["val_loss"] < 3.2  # below the uniform ln(27) = 3.30 after 40 steps
    assert m["steps"] == 40 and result.metrics == m
    assert loaded.meta["corpus"]["lines"] == 600
    assert loaded.meta["split"] == {"seed": 42, "train": 480, "val": 60, "test": 60}
    assert len(loaded.corpus_names) == 600
    assert not (tmp_path / "run" / "last").exists()


def test_same_seed_same_weights(small_corpus: Path, tmp_path: Path) -> None:
    train(tiny(small_corpus, tmp_path / "a", steps=20))
    train(tiny(small_corpus, tmp_path / "b", steps=20))
    assert_same_weights(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize(
    ("interrupt_at", "ema_decay"),
    [(20, 0.0), (25, 0.0), (25, 0.9)],  # at a save point, between two; weight averaging
)
def test_resumed_run_matches_uninterrupted(
    small_corpus: Path, tmp_path: Path, interrupt_at: int, ema_decay: float
) -> None:
    train(tiny(small_corpus, tmp_path / "whole", ema_decay=ema_decay))
    cfg = tiny(small_corpus, tmp_path / "resumed", ema_decay=ema_decay)
    train(cfg, stop_after=interrupt_at)
    assert (tmp_path / "resumed" / "last" / "meta.json").exists()
    train(cfg, resume=True)
    assert_same_weights(tmp_path / "whole", tmp_path / "resumed")


def test_resume_refuses_other_options(small_corpus: Path, tmp_path: Path) -> None:
    train(tiny(small_corpus, tmp_path / "r"), stop_after=10)
    with pytest.raises(ValueError, match="other training options"):
        train(tiny(small_corpus, tmp_path / "r", lr=0.1), resume=True)


def test_sgd_step_schedule() -> None:
    cfg = TrainConfig(
        corpus="",
        out="",
        optimizer="sgd",
        lr=0.1,
        schedule="step",
        decay_steps=(150_000,),
        steps=200_000,
    )
    assert cfg.lr_at(0) == 0.1 and cfg.lr_at(149_999) == 0.1
    assert cfg.lr_at(150_000) == pytest.approx(0.01)


def test_cosine_schedule_warms_up_and_decays() -> None:
    cfg = TrainConfig(corpus="", out="", lr=1.0, warmup_steps=10, steps=110)
    assert cfg.lr_at(0) == pytest.approx(0.1) and cfg.lr_at(9) == pytest.approx(1.0)
    assert cfg.lr_at(60) == pytest.approx(0.5) and cfg.lr_at(110) == pytest.approx(0.0)


def test_help_documents_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "training", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in out
    assert "--resume" in out


def test_cli_reports_bad_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("emma\nzo3y\n")
    assert cli_main(["--corpus", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.txt:2: character '3'" in capsys.readouterr().err


def test_cli_reads_rates_per_level_as_floats() -> None:
    args = vars(
        build_parser().parse_args(["--corpus", "c", "--out", "o", "--level-dropout", "0.45", "0.2"])
    )
    del args["resume"], args["diagnose"]  # run options, not config fields (as in main)
    cfg = TrainConfig(**args)
    assert cfg.level_dropout == (0.45, 0.2)
    assert cfg.to_dict()["level_dropout"] == [0.45, 0.2]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_training_writes_diagnostics_and_plots(small_corpus: Path, tmp_path: Path) -> None:
    train(tiny(small_corpus, tmp_path / "run", diagnose_interval=5))
    diag = tmp_path / "run" / "diagnostics"
    lines = (diag / "diagnostics.jsonl").read_text().splitlines()
    assert len(lines) == 8  # every 5th of 40 steps
    for name in ("loss.png", "activations.png", "gradients.png", "update_ratios.png"):
        assert (diag / name).read_bytes()[:4] == b"\x89PNG"
    assert load_checkpoint(tmp_path / "run").meta["history"][-1]["step"] == 40


def test_diagnose_flag_is_a_short_checked_run(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--corpus",
        str(small_corpus),
        "--out",
        str(tmp_path / "d"),
        "--n-embd",
        "8",
        "--n-hidden",
        "16",
        "--no-progress",
        "--diagnose",
        "--batch-size",
        "16",
    ]
    assert cli_main(args) == 0
    assert '"steps": 300' in capsys.readouterr().out
    lines = (tmp_path / "d" / "diagnostics" / "diagnostics.jsonl").read_text().splitlines()
    assert len(lines) == 30


def test_packed_batches_train_a_wavenet_only(small_corpus: Path, tmp_path: Path) -> None:
    result = train(tiny(small_corpus, tmp_path / "packed", batch_unit="packed"))
    assert result.metrics["val_loss"] < 3.2
    with pytest.raises(ValueError, match="packed"):
        tiny(small_corpus, tmp_path / "lstm", batch_unit="packed", model="lstm")


def test_wavenet_regularizers_reach_the_checkpoint(small_corpus: Path, tmp_path: Path) -> None:
    """The WaveNet-only options travel from the training config into the saved model."""
    options = dict(
        residual=True,
        skip=True,
        n_embd=32,
        dropout=0.3,
        dropout_path="split",
        residual_dropout=0.1,
        input_dropout=0.1,
        head_dropout=0.1,
        max_positions=12,
    )
    result = train(tiny(small_corpus, tmp_path / "run", **options))
    assert result.metrics["val_loss"] < 3.2
    config = load_checkpoint(tmp_path / "run").model.config.to_dict()
    assert {k: config[k] for k in options} == options

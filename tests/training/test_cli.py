"""`python -m training`'s flags come from the configs' types; the shipped checkpoint's
recorded command still parses to the config it recorded."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from unittest.mock import ANY

import pytest

from model import WaveNetConfig
from model.checkpoint import without_removed_options
from model.lstm import LSTMConfig
from tests.conftest import REPO
from training.__main__ import build_parser
from training.__main__ import main as cli_main
from training.cli import NOT_FLAGS, config_from_args
from training.config import TrainConfig

SHIPPED = REPO / "checkpoints" / "default"
NEW_OPTIONS = {"row_weights": "uniform", "label_dropout": 0.15, "direction": "forward"}  # 18, 19


def parse(*argv: str) -> TrainConfig:
    args = vars(build_parser().parse_args(["--corpus", "c", "--out", "o", *argv]))
    del args["resume"], args["diagnose"]  # run options, not config fields (as in main)
    return config_from_args(args)


def test_help_documents_every_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "training", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flags = [f.name for f in fields(TrainConfig)]
    flags += [f.name for cls in (WaveNetConfig, LSTMConfig) for f in fields(cls)]
    for name in set(flags) - NOT_FLAGS:
        assert "--" + name.replace("_", "-") in out, name
    assert "--resume" in out and "--vocab-size" not in out


def test_choices_and_switches_come_from_the_types() -> None:
    parser = build_parser()
    actions = {a.dest: a for a in parser._actions}
    assert list(actions["optimizer"].choices or []) == ["adamw", "sgd"]
    assert list(actions["batch_unit"].choices or []) == ["names", "windows", "packed"]
    assert list(actions["model"].choices or []) == ["wavenet", "lstm"]
    assert parse("--no-lowercase", "--decay-steps", "10", "20").decay_steps == (10, 20)
    assert parse("--no-lowercase").lowercase is False
    with pytest.raises(SystemExit):
        parse("--schedule", "linear")


def test_model_flags_build_the_nested_config() -> None:
    cfg = parse("--n-embd", "32", "--kernel-sizes", "2", "2", "2", "2", "--gated", "--no-batchnorm")
    assert cfg.model == WaveNetConfig(
        n_embd=32, kernel_sizes=(2, 2, 2, 2), gated=True, batchnorm=False
    )
    lstm = parse("--model", "lstm", "--n-hidden", "64")
    assert lstm.model == LSTMConfig(n_hidden=64)  # the LSTM's own defaults for the rest
    assert TrainConfig.from_dict(lstm.to_dict()) == lstm
    assert lstm.to_dict()["model"] == {"kind": "lstm", **LSTMConfig(n_hidden=64).to_dict()}


def test_an_option_of_another_model_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--corpus", "c", "--out", str(tmp_path), "--model", "lstm", "--gated"]
    assert cli_main(argv) == 2
    assert "--gated: not an option of the lstm model" in capsys.readouterr().err


def test_shipped_command_parses_to_the_shipped_config() -> None:
    meta = json.loads((SHIPPED / "meta.json").read_text())
    command = shlex.split(meta["training"]["command"])
    assert command[:3] == ["python", "-m", "training"]
    args = vars(build_parser().parse_args(command[3:]))
    del args["resume"], args["diagnose"]
    cfg = config_from_args(args).with_vocab_size(len(meta["vocab"]))
    cfg = cfg.with_label_sizes(tuple(meta["model_config"].get("label_sizes", ())))
    recorded = TrainConfig.from_dict(meta["training"]["config"])
    assert cfg == recorded
    # written before issue 18: bn_eps (a constant since) recorded, label options not yet
    assert cfg.to_dict() == {**NEW_OPTIONS, **meta["training"]["config"], "model": ANY}
    model = without_removed_options(meta["model_kind"], meta["model_config"])
    assert {"kind": meta["model_kind"], "label_sizes": [], **model} == cfg.to_dict()["model"]


def test_cli_reports_bad_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("emma\nzo3y\n")
    assert cli_main(["--corpus", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.txt:2: character '3'" in capsys.readouterr().err
    assert cli_main(["--corpus", str(bad), "--out", str(tmp_path / "o"), "--vocab", "a.b"]) == 2
    assert "vocab must not hold '.'" in capsys.readouterr().err


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

"""The learning-rate range test: a suggestion inside the sweep, a plot, a CLI."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from model import WaveNetConfig
from training.config import TrainConfig
from training.lr_range import lr_range_test, main, suggest_lr

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny(corpus: Path, out: Path, **overrides: object) -> TrainConfig:
    options: dict[str, object] = dict(
        corpus=str(corpus),
        out=str(out),
        model=WaveNetConfig(n_embd=8, n_hidden=32),
        batch_size=32,
        progress=False,
        threads=1,
        device="cpu",
    )
    options.update(overrides)
    return TrainConfig(**options)  # type: ignore[arg-type]


def test_suggestion_lies_in_the_sweep_and_plot_is_written(
    small_corpus: Path, tmp_path: Path
) -> None:
    result = lr_range_test(tiny(small_corpus, tmp_path / "lr"), lr_min=1e-4, lr_max=1.0, steps=40)
    assert 1e-4 <= result.suggested_lr <= 1.0
    assert result.lrs[0] == pytest.approx(1e-4)
    assert len(result.losses) == len(result.lrs) <= 40
    ratios = np.diff(np.log(result.lrs))
    assert np.allclose(ratios, ratios[0])  # geometric steps
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.min_loss == min(result.losses) < result.losses[0]
    assert result.plot == tmp_path / "lr" / "lr_range.png"
    assert result.plot.read_bytes().startswith(PNG_SIGNATURE)


def test_sweep_stops_when_the_loss_blows_up(small_corpus: Path, tmp_path: Path) -> None:
    cfg = tiny(small_corpus, tmp_path, optimizer="sgd")
    result = lr_range_test(cfg, lr_min=1e-2, lr_max=1e6, steps=40, write_plot=False)
    assert len(result.lrs) < 40
    assert 1e-2 <= result.suggested_lr <= 1e6
    assert result.plot is None


def test_suggestion_is_the_steepest_descent_before_the_minimum() -> None:
    lrs = list(np.logspace(-5, 0, 101))
    x = np.log10(lrs)
    # Falls fastest at 1e-3, bottoms out at 1e-1, then rises steeply.
    losses = list(3 - np.tanh(x + 3) + np.where(x > -1, 20 * (x + 1) ** 2, 0))
    assert suggest_lr(lrs, losses, 1e-5, 1.0) == pytest.approx(1e-3)


def test_too_short_a_descent_falls_back_to_a_tenth_of_the_best() -> None:
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    assert suggest_lr(lrs, [2.0, 1.0, 3.0, 9.0], 1e-3, 1.0) == pytest.approx(1e-3)
    assert suggest_lr(lrs, [2.0, 3.0, 4.0, 9.0], 1e-3, 1.0) == pytest.approx(1e-3)  # clamped
    assert suggest_lr([], [], 1e-3, 1.0) == 1e-3


def test_cli_prints_the_suggestion(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--corpus", str(small_corpus), "--out", str(tmp_path), "--steps", "20"]
    argv += ["--n-embd", "8", "--n-hidden", "32", "--batch-size", "16", "--threads", "1"]
    argv += ["--device", "cpu"]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"lr_range: suggested_lr=(\S+) min_loss=(\S+)", last)
    assert match, last
    assert 1e-5 <= float(match[1]) <= 1.0 and float(match[2]) < 3.5
    assert (tmp_path / "lr_range.png").is_file()


def test_cli_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    flags = ["--corpus", "--out", "--lr-min", "--lr-max", "--steps", "--n-embd", "--n-hidden"]
    flags += ["--kernel-sizes", "--optimizer", "--batch-size", "--weight-decay"]
    flags += ["--keep-duplicates", "--seed", "--threads"]
    for flag in flags:
        assert flag in out


def test_cli_rejects_a_backwards_sweep(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--corpus", str(small_corpus), "--out", str(tmp_path), "--lr-min", "1", "--lr-max"]
    assert main([*argv, "0.1"]) == 2
    assert "lr_min < lr_max" in capsys.readouterr().err

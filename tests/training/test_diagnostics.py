"""Training diagnostics: files and figures from a few captured steps; the warnings fire."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from model import WaveNet, WaveNetConfig
from model.wavenet import Level
from training.config import TrainConfig
from training.data import EncodedNames, prepare_data
from training.diagnostics import Diagnostics
from training.trainer import make_optimizer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ("loss.png", "activations.png", "gradients.png", "update_ratios.png")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, more so on a machine that is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train_data(small_corpus: Path) -> tuple[EncodedNames, int]:
    _, vocab, data = prepare_data(config(small_corpus), torch.device("cpu"))
    return data.train, vocab.size


def config(corpus: Path, out: Path | str = "") -> TrainConfig:
    model = WaveNetConfig(n_embd=8, n_hidden=32)
    return TrainConfig(corpus=str(corpus), out=str(out), model=model, batch_size=32)


def tiny_wavenet(vocab_size: int, **options: object) -> WaveNet:
    torch.manual_seed(0)
    return WaveNet(WaveNetConfig(vocab_size=vocab_size, n_embd=8, n_hidden=32, **options))  # type: ignore[arg-type]


def run_steps(
    model: nn.Module,
    data: EncodedNames,
    diag: Diagnostics | None,
    steps: int,
    capture_every: int = 1,
) -> list[str]:
    """The trainer's step, with diagnostics wired in as the trainer is meant to."""
    cfg = TrainConfig(corpus="", out="", lr=5e-3, batch_size=32)
    optimizer = make_optimizer(model, cfg)  # type: ignore[arg-type]
    batches = torch.Generator().manual_seed(1)
    warnings: list[str] = []
    for step in range(steps):
        rows = torch.randint(len(data), (cfg.batch_size,), generator=batches)
        x, y = data.batch(rows)
        captured = diag is not None and step % capture_every == 0
        with diag.capture() if diag is not None and captured else contextlib.nullcontext():
            _, loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        before = diag.snapshot() if diag is not None and captured else None
        optimizer.step()
        if diag is not None:
            if captured:
                warnings = diag.record(step, cfg.lr, before)
            diag.log_losses(step, train_loss=loss.item())
            if step % 5 == 4:
                diag.log_losses(step, val_loss=loss.item())
    return warnings


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_captured_steps_write_stats_and_plots(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    data, vocab_size = train_data
    diag = Diagnostics(tiny_wavenet(vocab_size), tmp_path / "diag")
    run_steps(diag.model, data, diag, steps=10, capture_every=3)

    rows = read_jsonl(tmp_path / "diag" / "diagnostics.jsonl")
    assert [r["step"] for r in rows] == [0, 3, 6, 9]
    for row in rows:
        assert [layer["name"] for layer in row["layers"]] == ["levels.0", "levels.1", "levels.2"]
        for layer in row["layers"]:
            assert 0.0 <= layer["saturation"] <= 1.0
            assert -1.0 <= layer["act_mean"] <= 1.0 and 0.0 < layer["act_std"] <= 1.0
            assert math.isfinite(layer["grad_mean"]) and layer["grad_std"] > 0
        names = {p["name"] for p in row["params"]}
        assert names == {"wte.weight", "lm_head.weight"} | {
            f"levels.{i}.conv.proj.weight" for i in range(3)
        }
        for param in row["params"]:
            assert math.isfinite(param["grad_data_ratio"]) and param["grad_data_ratio"] > 0
            assert math.isfinite(param["update_data_log10"])
            assert -8 < param["update_data_log10"] < 0

    losses = read_jsonl(tmp_path / "diag" / "losses.jsonl")
    assert sum("train_loss" in r for r in losses) == 10
    assert sum("val_loss" in r for r in losses) == 2

    written = diag.plot()
    assert [p.name for p in written] == list(PLOTS)
    for path in written:
        assert path.parent == tmp_path / "diag"
        assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 1000


def test_plots_without_data_are_still_valid(tmp_path: Path) -> None:
    diag = Diagnostics(nn.Linear(2, 2), tmp_path / "empty")
    for path in diag.plot():
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_record_without_snapshot_leaves_update_ratio_null(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    data, vocab_size = train_data
    model = tiny_wavenet(vocab_size)
    diag = Diagnostics(model, tmp_path)
    x, y = data.batch(torch.arange(16))
    with diag.capture():
        _, loss = model(x, y)
        loss.backward()
    diag.record(0, 0.0)
    (row,) = read_jsonl(tmp_path / "diagnostics.jsonl")
    assert all(p["update_data_log10"] is None for p in row["params"])
    assert "update_ratios.png" in [p.name for p in diag.plot()]


def test_capturing_does_not_change_training(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    data, vocab_size = train_data
    plain, watched = tiny_wavenet(vocab_size), tiny_wavenet(vocab_size)
    run_steps(plain, data, None, steps=4)
    run_steps(watched, data, Diagnostics(watched, tmp_path), steps=4)
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def levels(model: WaveNet) -> list[Level]:
    return [level for level in model.levels if isinstance(level, Level)]


@torch.no_grad()
def scale_weights(model: WaveNet, factor: float) -> None:
    """The lecture's bad initialisation: embedding and every level's weights scaled up."""
    model.wte.weight.mul_(factor)
    for level in levels(model):
        level.conv.proj.weight.mul_(factor)


def saturation_warnings(warnings: list[str]) -> list[str]:
    return [w for w in warnings if "saturated" in w]


def has_option(name: str) -> bool:
    return name in {f.name for f in fields(WaveNetConfig)}


def batchnorm_options() -> list[object]:
    without = pytest.param(
        False,
        marks=pytest.mark.skipif(not has_option("batchnorm"), reason="no BatchNorm-free model"),
    )
    return [True, without]


def test_normal_init_does_not_saturate(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    data, vocab_size = train_data
    model = tiny_wavenet(vocab_size)
    warnings = run_steps(model, data, Diagnostics(model, tmp_path), steps=3)
    assert saturation_warnings(warnings) == []


@pytest.mark.skipif(not has_option("batchnorm"), reason="no BatchNorm-free model")
def test_kaiming_init_without_batchnorm_matches_the_lecture(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    """Without BatchNorm, gain 5/3 on unit-variance embeddings gives the lecture's first
    layer: std about 0.75 and about 20% saturated (P(|N(0, 5/3)| > atanh 0.97) = 21%),
    less deeper down. That is above the 5% warning level: it warns, as it should."""
    data, vocab_size = train_data
    model = tiny_wavenet(vocab_size, batchnorm=False)
    diag = Diagnostics(model, tmp_path)
    warnings = run_steps(model, data, diag, steps=1)
    first, *deeper = diag.latest.values()
    assert 0.1 < first.saturation < 0.35 and 0.65 < (first.act_std or 0) < 0.85
    assert all(layer.saturation < first.saturation for layer in deeper)
    assert saturation_warnings(warnings)[0].startswith("layer levels.0: ")


@pytest.mark.parametrize("batchnorm", batchnorm_options())
def test_bad_init_saturates_and_warns(
    train_data: tuple[EncodedNames, int], tmp_path: Path, batchnorm: bool
) -> None:
    data, vocab_size = train_data
    options = {"batchnorm": batchnorm} if has_option("batchnorm") else {}
    model = tiny_wavenet(vocab_size, **options)
    scale_weights(model, 10.0)
    with torch.no_grad():
        for level in levels(model):
            if level.bn is not None:
                level.bn.weight.fill_(10)  # BatchNorm undoes the x10 above; its gain does not
    diag = Diagnostics(model, tmp_path)
    warnings = run_steps(model, data, diag, steps=1)
    assert len(saturation_warnings(warnings)) == 3, warnings
    assert saturation_warnings(warnings)[0].startswith("layer levels.0: ")
    assert "% of activations saturated (|t| > 0.97)" in warnings[0]
    assert all(c.saturation > 0.5 for c in diag.latest.values())


def test_batchnorm_undoes_scaled_weights(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    """The lecture's point: with BatchNorm, only the gain can push tanh into saturation."""
    data, vocab_size = train_data
    model = tiny_wavenet(vocab_size)
    scale_weights(model, 10.0)
    warnings = run_steps(model, data, Diagnostics(model, tmp_path), steps=1)
    assert saturation_warnings(warnings) == []


def test_update_ratio_far_from_1e3_warns(
    train_data: tuple[EncodedNames, int], tmp_path: Path
) -> None:
    data, vocab_size = train_data
    model = tiny_wavenet(vocab_size)
    diag = Diagnostics(model, tmp_path, ratio_low=1e-9, ratio_high=1e-8)
    warnings = run_steps(model, data, diag, steps=1)
    assert any(
        w.startswith("param levels.0.conv.proj.weight: update/data ratio 10^")
        and "far from 1e-3" in w
        for w in warnings
    ), warnings


def test_models_without_levels_watch_recurrent_layers(tmp_path: Path) -> None:
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(4, 6, batch_first=True)
            self.act = nn.Tanh()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.rnn(x)
            out: torch.Tensor = self.act(h)
            return out

    model = Tiny()
    diag = Diagnostics(model, tmp_path)
    with diag.capture():
        model(torch.randn(3, 5, 4)).sum().backward()
    diag.record(0, 0.1, diag.snapshot())
    assert set(diag.latest) == {"rnn", "act"}
    assert all(c.grad_std is not None for c in diag.latest.values())

"""Weight averaging: the average follows the weights, is applied only inside its block,
and a run with it keeps the averaged weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from model.checkpoint import load_checkpoint
from tests.training.test_trainer import tiny
from training.averaging import WeightAverage
from training.trainer import train


def test_average_tracks_weights_and_is_applied_only_inside_the_block() -> None:
    layer = nn.Linear(3, 2)
    average = WeightAverage(layer, decay=0.5)
    start = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(1.0)
    average.update()  # warm-up decay min(0.5, 2/11) = 2/11: the average moves 9/11 of the way
    expected = start + 9 / 11
    with average.applied():
        assert torch.allclose(layer.weight, expected)
    assert torch.allclose(layer.weight, start + 1.0)


def test_decay_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(nn.Linear(2, 2), decay=1.0)


def test_averaged_run_saves_other_weights_than_a_plain_one(
    small_corpus: Path, tmp_path: Path
) -> None:
    plain = train(tiny(small_corpus, tmp_path / "plain"))
    averaged = train(tiny(small_corpus, tmp_path / "ema", ema_decay=0.9))
    assert averaged.metrics["val_loss"] < 3.2
    a = load_checkpoint(tmp_path / "plain").model.state_dict()
    b = load_checkpoint(tmp_path / "ema").model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert plain.metrics["steps"] == averaged.metrics["steps"]

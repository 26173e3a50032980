from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import Vocab
from model.checkpoint import load_checkpoint
from tests.training.test_trainer import tiny
from training.breakdown import loss_breakdown, main, seen_and_unseen
from training.data import evaluate, prepare_data
from training.trainer import train


def test_breakdown_splits_the_evaluated_loss(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny(small_corpus, tmp_path / "run", steps=20)
    train(cfg)
    model = load_checkpoint(tmp_path / "run").model
    _, _, data = prepare_data(cfg, model.lm_head.weight.device)
    parts = loss_breakdown(model, data.val, batch_names=7)  # several batches
    assert parts.loss == pytest.approx(evaluate(model, data.val), rel=1e-5)
    assert parts.end_share == pytest.approx(len(data.val) / data.val.num_targets)
    mixed = parts.end_share * parts.end + (1 - parts.end_share) * parts.other
    assert mixed == pytest.approx(parts.loss, rel=1e-9)
    assert parts.end != pytest.approx(parts.other, abs=1e-3)
    assert 0.2 < parts.end_calibration < 5  # a predicted count of ends, near the true one

    capsys.readouterr()  # training's own log
    assert main([str(tmp_path / "run"), "--splits", "val", "test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].split()[-1] for line in lines] == ["val", "test"]
    assert f"all {parts.loss:.4f} end {parts.end:.4f}" in lines[0]


def test_dropout_samples_score_the_ensemble(small_corpus: Path, tmp_path: Path) -> None:
    cfg = tiny(small_corpus, tmp_path / "run", steps=20, dropout=0.5)
    train(cfg)
    model = load_checkpoint(tmp_path / "run").model
    _, _, data = prepare_data(cfg, model.lm_head.weight.device)
    deterministic = loss_breakdown(model, data.val)
    torch.manual_seed(0)
    one = loss_breakdown(model, data.val, dropout_samples=1)
    many = loss_breakdown(model, data.val, dropout_samples=16)
    assert not model.training  # left as found
    assert one.loss != pytest.approx(deterministic.loss, abs=1e-4)  # dropout was on
    assert many.loss < one.loss  # averaging masks beats one mask
    assert loss_breakdown(model, data.val) == deterministic  # nothing changed in the model


def test_seen_splits_names_by_whether_train_has_them(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vocab = Vocab.from_names(["abcdefghijklmnopqrstuvwxyz"])
    parts = seen_and_unseen(["ann", "bob"], ["bob", "cy", "bob", "dee"], vocab, torch.device("cpu"))
    assert {k: len(v) for k, v in parts.items()} == {"in train": 2, "not in train": 2}
    assert set(seen_and_unseen(["ann"], ["cy"], vocab, torch.device("cpu"))) == {"not in train"}

    cfg = tiny(small_corpus, tmp_path / "run", steps=20)
    train(cfg)
    capsys.readouterr()
    assert main([str(tmp_path / "run"), "--splits", "train", "val", "--seen"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(":")[0].endswith(" train")  # train is not split against itself
    assert lines[1].split(":")[0].endswith(" val")
    assert all(" in train (" in line for line in lines[2:]) and len(lines) >= 3

from __future__ import annotations

from pathlib import Path

import pytest

from model.checkpoint import load_checkpoint
from tests.training.test_trainer import tiny
from training.breakdown import loss_breakdown, main
from training.trainer import evaluate, prepare_data, train


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

    capsys.readouterr()  # training's own log
    assert main([str(tmp_path / "run"), "--splits", "val", "test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].split()[-1] for line in lines] == ["val", "test"]
    assert f"all {parts.loss:.4f} end {parts.end:.4f}" in lines[0]

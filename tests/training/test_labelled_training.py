"""Training on a labelled corpus: a conditional model whose checkpoint holds the label space
(priors from the training part, posteriors calibrated on validation), that scores names
with any subset of its labels; resuming gives the same weights."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_checkpoint
from model.posterior import infer_labels
from model.wavenet import WaveNet
from tests.training.test_trainer import assert_same_weights, tiny
from training.calibrate import main as calibrate_main
from training.data import EncodedNames, prepare_data
from training.trainer import train

DECADES = {"1900": "bcd", "2000": "stv"}  # a decade's names start with one of its letters


def synthetic_csv(tmp_path: Path, names: int = 600) -> Path:
    """Names that carry their labels: girls' names end in 'a', boys' in 'o'; a decade's
    begin with its letters. Each name once, with a count."""
    rng = random.Random(0)
    lines, seen = ["name,sex,decade,count"], set()
    while len(seen) < names:
        sex, decade = rng.choice("FM"), rng.choice(sorted(DECADES))
        middle = "".join(rng.choice("aeilnru") for _ in range(rng.randint(2, 4)))
        name = rng.choice(DECADES[decade]) + middle + ("a" if sex == "F" else "o")
        if name not in seen:
            seen.add(name)
            lines.append(f"{name},{sex},{decade},{rng.randint(5, 500)}")
    path = tmp_path / "synthetic.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@torch.no_grad()
def loss_given(model: WaveNet, data: EncodedNames, given: tuple[bool, bool]) -> float:
    """Val loss with only the label columns flagged in `given` known."""
    assert data.labels is not None
    labels = data.labels * torch.tensor(given, dtype=torch.long)
    _, loss = model(data.x, data.y, labels=labels)
    assert loss is not None
    return float(loss)


def test_a_labelled_run_writes_a_conditional_checkpoint(tmp_path: Path) -> None:
    corpus = synthetic_csv(tmp_path)
    cfg = tiny(corpus, tmp_path / "run", steps=150, eval_interval=50, batch_unit="packed")
    result = train(cfg)
    loaded = load_checkpoint(tmp_path / "run")
    space = loaded.labels
    assert space is not None and space.names == ("sex", "decade") and space.sizes == (3, 3)
    assert isinstance(loaded.model, WaveNet) and loaded.model.config.label_sizes == (3, 3)
    m = loaded.meta["metrics"]
    assert m == result.metrics
    assert m["val_loss"] < m["val_loss_unlabeled"] - 0.05  # the labels help
    assert m["test_loss"] < m["test_loss_unlabeled"] - 0.05
    assert loaded.meta["split"]["train"] == 480 and loaded.meta["split"]["val_rows"] == 60
    assert loaded.meta["corpus"]["rows"] == 600
    assert sum(space.types) == 480  # priors from the training part's rows only
    # calibrated on validation: the chosen prior's fit is the better one, and stored
    calibration = loaded.meta["calibration"]
    assert calibration["names"] == 60
    assert (space.prior, space.temperature) == (calibration["prior"], calibration["temperature"])
    fits = {p: sum(f["log_loss"].values()) for p, f in calibration["priors"].items()}
    assert fits[space.prior] == min(fits.values())
    # the posterior reads the labels off unseen names
    found = infer_labels(loaded.model, loaded.vocab, space, ["sunila", "dirlo"])
    assert [p.columns["sex"].best for p in found] == ["F", "M"]
    assert [p.columns["decade"].best for p in found] == ["2000", "1900"]


def test_label_dropout_makes_any_subset_of_labels_usable(tmp_path: Path) -> None:
    corpus = synthetic_csv(tmp_path)
    device = torch.device("cpu")
    losses = {}
    for rate in (0.0, 0.3):
        cfg = tiny(
            corpus, tmp_path / f"run{rate}", steps=200, eval_interval=200, label_dropout=rate
        )
        train(cfg)
        model = load_checkpoint(cfg.out).model
        assert isinstance(model, WaveNet)
        _, _, data = prepare_data(cfg, device)
        subsets = [(True, True), (True, False), (False, True), (False, False)]
        losses[rate] = {s: loss_given(model, data.val, s) for s in subsets}
    dropped = losses[0.3]
    # every label given helps, alone or together
    assert dropped[(True, True)] < dropped[(True, False)] < dropped[(False, False)]
    assert dropped[(True, True)] < dropped[(False, True)] < dropped[(False, False)]
    # without dropout the model never saw "unknown": it does worse with labels left out
    assert losses[0.0][(False, False)] > dropped[(False, False)] + 0.05


@pytest.mark.parametrize("row_weights", ["uniform", "log_count"])
def test_a_labelled_run_resumes_exactly(tmp_path: Path, row_weights: str) -> None:
    corpus = synthetic_csv(tmp_path, names=200)
    options = dict(batch_unit="packed", row_weights=row_weights, ema_decay=0.9)
    train(tiny(corpus, tmp_path / "whole", **options))
    cfg = tiny(corpus, tmp_path / "resumed", **options)
    train(cfg, stop_after=25)
    train(cfg, resume=True)
    assert_same_weights(tmp_path / "whole", tmp_path / "resumed")


def test_an_unlabelled_csv_trains_the_plain_model(tmp_path: Path) -> None:
    corpus = tmp_path / "names.csv"
    corpus.write_text(
        "name,count\n"
        + "".join(f"n{'aeiou'[i % 5]}{'lmr'[i % 3]}a{i % 7 * 'e'},3\n" for i in range(105))
    )
    train(tiny(corpus, tmp_path / "run", steps=5, eval_interval=5))
    loaded = load_checkpoint(tmp_path / "run")
    assert loaded.labels is None and "val_loss_unlabeled" not in loaded.meta["metrics"]


def test_recalibrating_a_checkpoint_gives_the_same_calibration(
    tmp_path: Path, small_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tiny(synthetic_csv(tmp_path, names=200), tmp_path / "run", steps=30))
    before = load_checkpoint(tmp_path / "run")
    assert calibrate_main([str(tmp_path / "run")]) == 0
    after = load_checkpoint(tmp_path / "run")
    assert after.labels == before.labels and after.fingerprint == before.fingerprint
    assert after.meta["calibration"] == before.meta["calibration"]
    assert f"prior {before.labels.prior}" in capsys.readouterr().out  # type: ignore[union-attr]
    train(tiny(small_corpus, tmp_path / "plain", steps=5, eval_interval=5))
    assert calibrate_main([str(tmp_path / "plain")]) == 2
    assert "has no label columns" in capsys.readouterr().err

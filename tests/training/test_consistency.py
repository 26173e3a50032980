"""R-Drop: the doubled batch, the loss, its effect on dropout samples, the trainer option."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import WaveNet
from model.checkpoint import load_checkpoint
from tests.training.test_distill import CONFIG, names_batch
from tests.training.test_trainer import tiny
from training.config import TrainConfig
from training.consistency import doubled, rdrop_loss
from training.data import forward
from training.trainer import train


def test_doubled_repeats_every_part_of_the_batch() -> None:
    x, y = torch.arange(6).view(2, 3), torch.arange(6, 12).view(2, 3)
    offsets = torch.tensor([[0, 1, 0], [0, 1, 2]])
    dx, dy, doff = doubled((x, y, offsets))
    assert torch.equal(dx, torch.cat([x, x])) and torch.equal(dy, torch.cat([y, y]))
    assert doff is not None and torch.equal(doff, torch.cat([offsets, offsets]))
    assert doubled((x, y, None))[2] is None


def test_without_dropout_the_loss_is_the_plain_cross_entropy() -> None:
    torch.manual_seed(0)
    model = WaveNet(CONFIG)
    batch = names_batch(0)
    model.eval()  # no dropout: the two copies agree, the KL term is 0
    loss, cross_entropy = rdrop_loss(model, batch, weight=5.0)
    _, plain = forward(model, batch)
    assert plain is not None
    assert torch.allclose(loss, cross_entropy) and torch.allclose(cross_entropy, plain)

    model.train()  # two dropout masks: the samples disagree, the KL term is positive
    loss, cross_entropy = rdrop_loss(model, batch, weight=5.0)
    assert loss.item() > cross_entropy.item() + 1e-4


def test_training_with_it_makes_dropout_samples_agree() -> None:
    """Trained with the KL term, two dropout samples of the model disagree less."""
    disagreement = {}
    for weight in (0.0, 3.0):
        torch.manual_seed(0)
        model = WaveNet(CONFIG)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(80):
            model.train()
            loss, _ = rdrop_loss(model, names_batch(step % 4), weight)
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        torch.manual_seed(1)
        with torch.no_grad():
            loss, cross_entropy = rdrop_loss(model, names_batch(9), weight=1.0)
        disagreement[weight] = (loss - cross_entropy).item()  # the symmetric KL
    assert disagreement[3.0] < 0.5 * disagreement[0.0]  # 0.27 of it when written


def test_trainer_option_trains_and_is_validated(small_corpus: Path, tmp_path: Path) -> None:
    cfg = tiny(
        small_corpus,
        tmp_path / "ckpt",
        n_hidden=16,
        gated=True,
        residual=True,
        skip=True,
        dropout=0.3,
        batch_unit="packed",
        batch_size=16,
        steps=30,
        eval_interval=15,
        consistency=1.0,
    )
    result = train(cfg)
    assert load_checkpoint(result.out).meta["training"]["config"]["consistency"] == 1.0
    assert result.metrics["val_loss"] < 3.3  # learned something: log(27) is 3.30
    with pytest.raises(ValueError, match="consistency"):
        TrainConfig(corpus="c", out="o", consistency=-1.0)

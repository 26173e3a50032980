"""A labelled corpus as training data: the split by name, label ids in every kind of batch,
label dropout, row weights, and the priors of the training part."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import IGNORE_INDEX, WaveNet, WaveNetConfig
from training.config import TrainConfig
from training.corpus import load_corpus
from training.data import Batches, evaluate, prepare_data, split_names
from training.labelled import label_space, split_rows


def labelled_csv(tmp_path: Path, names: int = 300) -> Path:
    """Every name twice or three times: under F and M, and in one or two decades, with
    counts 1 .. 1000 (so row weights matter)."""
    lines = ["name,sex,decade,count"]
    for i in range(names):
        name = "".join("abcdefghij"[int(d)] for d in str(i * 7919 % 100_000)) + "a"
        lines.append(f"{name},F,{1900 + 10 * (i % 5)},{1 + i * 37 % 1000}")
        lines.append(f"{name},M,{1900 + 10 * (i % 5)},{1 + i % 3}")
        if i % 2:
            lines.append(f"{name},F,1990,5")
    path = tmp_path / "labelled.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def config(corpus: Path, **overrides: object) -> TrainConfig:
    options: dict = dict(corpus=str(corpus), out="", batch_size=64, model=WaveNetConfig())
    options.update(overrides)
    return TrainConfig(**options)


def test_the_split_is_by_distinct_name(tmp_path: Path) -> None:
    corpus = load_corpus(labelled_csv(tmp_path))
    assert corpus.labels is not None
    parts = split_names(corpus.names, seed=42)
    rows = split_rows(corpus.labels, parts)
    names = [{name for name, _, _ in part} for part in rows]
    assert names[0].isdisjoint(names[1]) and names[0].isdisjoint(names[2])
    assert names[1].isdisjoint(names[2])
    assert [len(n) for n in names] == [240, 30, 30]  # 80/10/10 of the 300 names
    assert sum(len(r) for r in rows) == len(corpus.labels.rows)
    for part, part_names in zip(rows, parts, strict=True):  # every row of a name with it
        assert {row[0] for row in part} == set(part_names)


def test_prepared_splits_carry_label_ids_counts_and_training_priors(tmp_path: Path) -> None:
    corpus, vocab, data = prepare_data(config(labelled_csv(tmp_path)), torch.device("cpu"))
    space = data.labels
    assert space is not None and space.names == ("sex", "decade")
    assert space.sizes == (3, 7)  # F, M and 1900 .. 1940, 1990; plus unknown
    assert data.sizes["train"] == 240 and data.sizes["train_rows"] == len(data.train)
    train = data.train
    assert train.labels is not None and train.counts is not None
    assert train.labels.shape == (len(train), 2) and int(train.labels.min()) >= 1
    # the priors are counted on the training rows only
    train_rows = split_rows(corpus.labels, split_names(corpus.names))[0]  # type: ignore[arg-type]
    assert space == label_space(corpus.labels, train_rows)  # type: ignore[arg-type]
    assert sum(space.types) == len(train_rows)
    assert sum(space.births) == sum(count for _, _, count in train_rows)
    sex = space.column("sex")
    assert sex.prior[0] == pytest.approx(
        sum(v[0] == "F" for _, v, _ in train_rows) / len(train_rows)
    )
    # a row's ids name its values
    name, values, count = train_rows[0]
    assert space.decode(train.labels[0].tolist()) == dict(zip(space.names, values, strict=True))
    assert vocab.decode(train.y[0, : len(name)].tolist()) == name and int(train.counts[0]) == count


def test_label_dropout_drops_each_label_at_its_rate(tmp_path: Path) -> None:
    cfg = config(labelled_csv(tmp_path), label_dropout=0.3, batch_size=4000)
    _, _, data = prepare_data(cfg, torch.device("cpu"))
    batch = Batches(cfg, data.train, torch.Generator().manual_seed(0)).next()
    assert batch.labels is not None and batch.labels.shape == (4000, 2)
    unknown = (batch.labels == 0).float().mean(dim=0)
    assert unknown.tolist() == pytest.approx([0.3, 0.3], abs=0.03)
    cfg.label_dropout = 0.0
    batch = Batches(cfg, data.train, torch.Generator().manual_seed(0)).next()
    assert batch.labels is not None and int((batch.labels == 0).sum()) == 0


def test_row_weights_follow_log_counts(tmp_path: Path) -> None:
    cfg = config(labelled_csv(tmp_path), row_weights="log_count", label_dropout=0.0)
    _, _, data = prepare_data(cfg, torch.device("cpu"))
    assert data.train.counts is not None
    batches = Batches(cfg, data.train, torch.Generator().manual_seed(0))
    drawn = torch.cat([batches.draw(5000, windows=False) for _ in range(20)])
    counts = data.train.counts[drawn].double()
    weights = torch.log1p(data.train.counts.double())
    expected = float((weights * data.train.counts).sum() / weights.sum())  # E[count] drawn
    assert float(counts.mean()) == pytest.approx(expected, rel=0.03)
    uniform = float(data.train.counts.double().mean())
    assert float(counts.mean()) > 1.2 * uniform


@pytest.mark.parametrize("unit", ["names", "windows", "packed"])
def test_every_batch_kind_carries_the_rows_labels(tmp_path: Path, unit: str) -> None:
    cfg = config(labelled_csv(tmp_path), batch_unit=unit, label_dropout=0.0)
    _, _, data = prepare_data(cfg, torch.device("cpu"))
    assert data.train.labels is not None
    batch = Batches(cfg, data.train, torch.Generator().manual_seed(0)).next()
    assert batch.labels is not None
    if unit != "packed":
        assert batch.labels.shape == (batch.x.shape[0], 2)
        return
    assert batch.offsets is not None and batch.labels.shape == (*batch.x.shape, 2)
    # each name's labels at each of its positions: read the names back with their labels
    rows_labels = {tuple(r) for r in data.train.labels.tolist()}
    for r in range(batch.x.shape[0]):
        for c in range(batch.x.shape[1]):
            if batch.y[r, c] == IGNORE_INDEX:
                assert batch.labels[r, c].tolist() == [0, 0]
            elif batch.offsets[r, c] > 0:
                assert torch.equal(batch.labels[r, c], batch.labels[r, c - 1])
            else:
                assert tuple(batch.labels[r, c].tolist()) in rows_labels


def test_packed_labels_give_each_name_its_own_loss(tmp_path: Path) -> None:
    """A packed batch with per-position labels scores every name as a batch of one name
    per row with its labels does."""
    cfg = config(labelled_csv(tmp_path), batch_unit="packed", label_dropout=0.5)
    _, vocab, data = prepare_data(cfg, torch.device("cpu"))
    assert data.labels is not None
    model = WaveNet(WaveNetConfig(vocab_size=vocab.size, label_sizes=data.labels.sizes)).eval()
    for p in model.parameters():  # conditioning starts at zero: make it matter
        torch.nn.init.normal_(p, std=0.3)
    rows = torch.arange(40)
    labels = data.train.labels[rows].clone()  # type: ignore[index]
    labels[::3, 0] = 0  # some labels unknown
    packed = data.train.packed(rows, 64, labels)
    x, y = data.train.batch(rows)
    with torch.no_grad():
        packed_logits, _ = model(packed.x, offsets=packed.offsets, labels=packed.labels)
        alone, _ = model(x, labels=labels)
    torch.testing.assert_close(packed_logits[packed.y != IGNORE_INDEX], alone[y != IGNORE_INDEX])


def test_evaluation_with_labels_unknown_scores_the_same_rows(tmp_path: Path) -> None:
    _, vocab, data = prepare_data(config(labelled_csv(tmp_path)), torch.device("cpu"))
    assert data.labels is not None
    model = WaveNet(WaveNetConfig(vocab_size=vocab.size, label_sizes=data.labels.sizes))
    # untrained, the conditioning is zero: labels or not, the same loss
    assert evaluate(model, data.val) == pytest.approx(evaluate(model, data.val, labels=False))
    for level in model.levels:
        torch.nn.init.normal_(level.cond.weight)  # type: ignore[union-attr, arg-type]
    assert evaluate(model, data.val) != pytest.approx(evaluate(model, data.val, labels=False))


def test_an_lstm_takes_no_labels(tmp_path: Path) -> None:
    from model.lstm import LSTMConfig

    cfg = config(labelled_csv(tmp_path), model=LSTMConfig())
    with pytest.raises(ValueError, match="needs a WaveNet"):
        cfg.with_label_sizes((3, 7))
    assert cfg.with_label_sizes(()) == cfg

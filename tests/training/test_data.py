import random
from pathlib import Path

import pytest
import torch

from model import IGNORE_INDEX, Vocab
from training.corpus import load_corpus
from training.data import EncodedNames, split_names


def test_lecture_split_sizes_and_determinism(names_txt: Path) -> None:
    names = load_corpus(names_txt, keep_duplicates=True).names
    assert len(names) == 32_033
    train, val, test = split_names(names)
    assert (len(train), len(val), len(test)) == (25_626, 3_203, 3_204)
    assert split_names(names) == (train, val, test)
    # exactly the lecture's code: random.seed(42); random.shuffle(words)
    words = list(names)
    random.seed(42)
    random.shuffle(words)
    assert train == words[:25_626] and val == words[25_626:28_829] and test == words[28_829:]
    assert split_names(names, seed=7)[0] != train


def test_encoding_and_batches() -> None:
    vocab = Vocab.from_names(["ab", "abc"])
    data = EncodedNames.build(["ab", "c", "abca"], vocab)
    a, b = vocab.stoi["a"], vocab.stoi["b"]
    assert data.x[0].tolist() == [0, a, b, 0, 0]
    assert data.y[0].tolist() == [a, b, 0, IGNORE_INDEX, IGNORE_INDEX]
    assert data.num_targets == 3 + 2 + 5
    x, y = data.batch(torch.tensor([0, 1]))
    assert x.shape == y.shape == (2, 3)  # trimmed to the longest in the batch


def test_window_batches_have_one_prediction_per_row() -> None:
    vocab = Vocab.from_names(["abc"])
    data = EncodedNames.build(["ab", "c", "abca"], vocab)
    windows = data.window_index()
    assert len(windows) == data.num_targets == 10
    assert windows[:3].tolist() == [[0, 0], [0, 1], [0, 2]]
    x, y = data.window_batch(windows[torch.tensor([0, 2, 7])])
    assert x.shape == (3, 3)  # up to the furthest position asked for
    assert ((y != IGNORE_INDEX).sum(dim=1) == 1).all()
    assert y[0, 0] == vocab.stoi["a"] and y[1, 2] == 0 and y[2, 2] == vocab.stoi["c"]


def test_packed_batches_keep_every_name_whole() -> None:
    names = ["emma", "olivia", "ava", "x", "christopherjohn", "li", "mia"]
    vocab = Vocab.from_names(names)
    data = EncodedNames.build(names, vocab)
    rows = torch.tensor([6, 0, 4, 3, 1, 1])  # any order, repeats allowed
    x, y, offsets = data.packed_batch(rows, 20)
    assert x.shape[1] == 20 and int((y != IGNORE_INDEX).sum()) == sum(
        len(names[i]) + 1 for i in rows.tolist()
    )
    found = []  # read the names back: each starts at offset 0 with the boundary token
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            if y[r, c] == IGNORE_INDEX:
                continue
            if offsets[r, c] == 0:
                assert x[r, c] == 0
                found.append("")
            else:
                assert offsets[r, c] == offsets[r, c - 1] + 1  # never split across rows
            found[-1] += vocab.decode([int(y[r, c])]) if y[r, c] != 0 else ""
    assert found == [names[i] for i in rows.tolist()]
    with pytest.raises(ValueError, match="positions"):
        data.packed_batch(rows, 10)  # christopherjohn needs 16

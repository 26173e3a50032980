import random
from pathlib import Path

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

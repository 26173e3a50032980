"""A labelled corpus as training data: rows split by distinct name, label ids, priors.

Every (name, labels) row of the corpus goes to the part of its name (the names' 80/10/10
split), so validation and test names were never seen in training under any label. The
label space's columns and values are the whole corpus's; its priors (by name types and
by births) are counted on the training part only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

from model import Vocab
from model.labels import LabelColumn, LabelSpace
from model.scoring import encode_names
from training.corpus import LabelTable, Row


def label_space(table: LabelTable, rows: Sequence[Row]) -> LabelSpace:
    """The corpus's label columns with priors counted over `rows`: for every full label
    set, how many rows (distinct names) carry it, and their summed counts (births)."""
    types: Counter[tuple[str, ...]] = Counter()
    births: Counter[tuple[str, ...]] = Counter()
    for _, values, count in rows:
        types[values] += 1
        births[values] += count
    position = [{v: i for i, v in enumerate(vs)} for vs in table.values]
    combos = sorted(types, key=lambda c: [p[v] for p, v in zip(position, c, strict=True)])
    columns = []
    for j, (name, values, ordinal) in enumerate(
        zip(table.columns, table.values, table.ordinal, strict=True)
    ):
        by_value = Counter({v: 0 for v in values})
        for combo, n in types.items():
            by_value[combo[j]] += n
        total = sum(by_value.values()) or 1
        prior = tuple(by_value[v] / total for v in values)
        columns.append(LabelColumn(name, values, ordinal, prior))
    return LabelSpace(
        tuple(columns),
        tuple(combos),
        tuple(float(types[c]) for c in combos),
        tuple(float(births[c]) for c in combos),
    )


def split_rows(table: LabelTable, parts: Sequence[Sequence[str]]) -> list[list[Row]]:
    """The rows of each part of the names' split, in corpus order."""
    part_of = {name: i for i, names in enumerate(parts) for name in names}
    out: list[list[Row]] = [[] for _ in parts]
    for row in table.rows:
        out[part_of[row[0]]].append(row)
    return out


def encode_rows(
    rows: Sequence[Row], vocab: Vocab, space: LabelSpace
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The rows as EncodedNames' tensors: x, y, lengths (each distinct name encoded
    once), label ids (N, columns) and counts (N,)."""
    names = list(dict.fromkeys(name for name, _, _ in rows))
    index = {name: i for i, name in enumerate(names)}
    x, y, lengths = encode_names(vocab, names)
    which = torch.tensor([index[name] for name, _, _ in rows], dtype=torch.long)
    id_of = [{v: i + 1 for i, v in enumerate(c.values)} for c in space.columns]
    ids = [[m[v] for m, v in zip(id_of, values, strict=True)] for _, values, _ in rows]
    labels = torch.tensor(ids, dtype=torch.long).view(len(rows), len(id_of))
    counts = torch.tensor([count for _, _, count in rows], dtype=torch.long)
    return x[which], y[which], lengths[which], labels, counts

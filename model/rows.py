"""Storage for a batch whose rows come and go every step (model/sampling.py's Batch):
tables of rows with room to grow, and an arena where rows leave their results.

Both grow by doubling and never shrink, so a busy batch stops allocating after warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from model.incremental import IncrementalWaveNet, State

BLOCK_ROWS = 16  # the arena hands out rows in blocks this size (a job: one or more)


class RowTable:
    """Each row's integers and floats, rows [0, len) in use, and each row's network state
    (incremental.State): one table per part of the state, so that every part a step reads
    is contiguous, as it would be in a batch of its own."""

    def __init__(self, net: IncrementalWaveNet, int_columns: int, float_columns: int) -> None:
        self.net = net
        # a fresh row's state when it has no labels: the same for every row
        self.fresh = net.init_state(1)
        self.fresh_by_labels: dict[tuple[int, ...], State] = {}  # of a row under labels
        self.ints = torch.zeros(0, int_columns, dtype=torch.long)
        self.floats = torch.zeros(0, float_columns)
        self.parts = [part.new_zeros(0, *part.shape[1:]) for part in _parts(self.fresh)]
        self.live = 0
        self._views: Views | None = None  # of the rows in use, until they change

    def __len__(self) -> int:
        return self.live

    def append(self, rows: int, labels: tuple[int, ...] | None = None) -> tuple[Tensor, Tensor]:
        """Room for `rows` more rows, their network state fresh (under label ids `labels`,
        the same for every row, for a conditional model); returns their integers and
        floats (views) for the caller to fill in."""
        self.reserve(self.live + rows)
        new = slice(self.live, self.live + rows)
        state = self.fresh if labels is None else self._fresh_under(labels)
        for table, part in zip(self.parts, _parts(state), strict=True):
            table[new] = part  # one fresh row broadcasts
        self.live += rows
        self._views = None
        return self.ints[new], self.floats[new]

    def _fresh_under(self, labels: tuple[int, ...]) -> State:
        """A fresh row's state under these labels, computed once (label sets are few)."""
        state = self.fresh_by_labels.get(labels)
        if state is None:
            ids = torch.tensor([labels], device=self.net.device)
            state = self.fresh_by_labels[labels] = self.net.init_state(1, ids)
        return state

    def reserve(self, rows: int) -> None:
        """Room for `rows` rows in all."""
        if rows > len(self.ints):
            size = max(rows, 2 * len(self.ints))
            self.ints, self.floats = grown(self.ints, size), grown(self.floats, size)
            self.parts = [grown(table, size) for table in self.parts]

    def remove(self, dead: list[int]) -> None:
        """Remove rows (sorted indices below len): the last rows move into their places,
        so the cost is in the rows removed, not in the rows kept."""
        keep = self.live - len(dead)
        holes = [i for i in dead if i < keep]
        if holes:
            gone = set(dead[len(holes) :])
            movers = torch.tensor([i for i in range(keep, self.live) if i not in gone])
            at = torch.tensor(holes)
            # index_copy_ takes half the time of `table[at] = table[movers]`
            for table in (self.ints, self.floats, *self.parts):
                table.index_copy_(0, at, table.index_select(0, movers))
        self.live = keep
        self._views = None

    def take_out(self, rows: list[int]) -> list[Tensor]:
        """Copies of these rows (sorted indices below len), which leave the table: their
        integers, floats and each part of their state, for `put_back`."""
        at = torch.tensor(rows)
        out = [table[at] for table in (self.ints, self.floats, *self.parts)]
        self.remove(rows)
        return out

    def put_back(self, taken: list[Tensor], shift: int) -> None:
        """Rows taken out, back at the end, `shift` steps of the batch's clock later: the
        rings are indexed by the clock, so each moves on by as many slots."""
        rows = len(taken[0])
        self.reserve(self.live + rows)
        new = slice(self.live, self.live + rows)
        tables = (self.ints, self.floats, *self.parts)
        rings = range(2, 2 + len(self.fresh.rings))  # (rows, span, width) each
        for i, (table, part) in enumerate(zip(tables, taken, strict=True)):
            ring = i in rings and part.shape[1] > 0
            table[new] = torch.roll(part, shift % part.shape[1], dims=1) if ring else part
        self.live += rows
        self._views = None

    def views(self) -> Views:
        """Each column of the rows in use, and their network state, as views."""
        if self._views is None:
            B = self.live
            ints, floats = self.ints[:B], self.floats[:B]
            self._views = Views(ints.unbind(1), floats.unbind(1), self.state())
        return self._views

    def state(self) -> State:
        """The network state of rows [0, len), as views into the tables."""
        parts = [table[: self.live] for table in self.parts]
        rings = parts[: len(self.fresh.rings)]
        if self.fresh.conds is None:
            return State(rings)
        return State(rings, parts[len(rings) : -1], parts[-1])


def _parts(state: State) -> list[Tensor]:
    """A state's tensors in order: the rings, then the conditioning and the head's."""
    head = [] if state.head is None else [state.head]
    return [*state.rings, *(state.conds or []), *head]


@dataclass(frozen=True)
class Views:
    ints: tuple[Tensor, ...]
    floats: tuple[Tensor, ...]
    state: State


class ResultArena:
    """Where rows write their characters and log-probabilities, and read their uniform
    numbers: a job's rows hold the consecutive arena rows [base, base + n) until it is
    released."""

    def __init__(self, steps: int) -> None:
        self.blocks = bytearray()  # 1 where a block is in use
        self.ids = torch.zeros(0, steps, dtype=torch.long)
        self.logprob = torch.zeros(0)
        self.uniform = torch.zeros(0)

    def allocate(self, rows: int) -> int:
        """The first of `rows` consecutive free rows; their log-probabilities are zero."""
        blocks = _blocks(rows)
        at = self.blocks.find(bytes(blocks))
        if at < 0:  # grow (free blocks at the end join the new ones)
            self.blocks.extend(bytes(max(len(self.blocks), blocks)))
            size = len(self.blocks) * BLOCK_ROWS
            self.ids, self.logprob = grown(self.ids, size), grown(self.logprob, size)
            self.uniform = grown(self.uniform, size)
            at = self.blocks.find(bytes(blocks))
        self.blocks[at : at + blocks] = b"\1" * blocks
        base = at * BLOCK_ROWS
        self.logprob[base : base + rows].zero_()
        return base

    def release(self, base: int, rows: int) -> None:
        first, blocks = base // BLOCK_ROWS, _blocks(rows)
        self.blocks[first : first + blocks] = bytes(blocks)

    def read(self, base: int, rows: int, steps: int) -> tuple[list[list[int]], list[float]]:
        """The names (id lists, ending before their end token) and log-probabilities of
        arena rows [base, base + rows), whose names have at most `steps` - 1 ids."""
        ids = self.ids[base : base + rows, :steps]
        # a name ends at its first end token (what lies after it is an earlier row's)
        lengths = (ids == 0).int().argmax(dim=-1).tolist()
        names = [row[:length] for row, length in zip(ids.tolist(), lengths, strict=True)]
        return names, self.logprob[base : base + rows].tolist()


class Handles:
    """Small integers to name jobs by, handed out and taken back."""

    def __init__(self) -> None:
        self.size = 0  # handles made so far
        self.free: list[int] = []

    def take(self) -> int:
        if not self.free:
            size = max(2 * self.size, 64)
            self.free = list(range(size - 1, self.size - 1, -1))
            self.size = size
        return self.free.pop()

    def give_back(self, handle: int) -> None:
        self.free.append(handle)


def _blocks(rows: int) -> int:
    return -(-rows // BLOCK_ROWS)


def grown(table: Tensor, rows: int) -> Tensor:
    """`table` with room for `rows` rows (at least its own), the old ones kept; the new
    ones hold whatever memory held (every user writes a row before reading it)."""
    out = table.new_empty(rows, *table.shape[1:])
    out[: len(table)] = table
    return out

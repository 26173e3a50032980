"""Label columns of a conditional model (sex, decade, ...) and their priors.

A labelled corpus gives every name type a value in each label column. The model sees a
label as an id: 0 is "unknown" (a label not given, or dropped in training), 1.. the
column's values in order. The priors come from the training corpus, counted two ways for
every full label set seen there: by name types (how many distinct names carry it) and by
births (the summed `count` column); posterior.py uses either.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

UNKNOWN = 0  # the id of a label not given
PRIORS = ("types", "births")
PriorKind = Literal["types", "births"]


class LabelError(ValueError):
    """A label column or value the label space does not know, or a malformed space."""


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class LabelColumn:
    name: str
    values: tuple[str, ...]  # id i + 1 is values[i]; id 0 is unknown
    ordinal: bool = False  # numeric values with an order (decades): posteriors get a mean
    prior: tuple[float, ...] = ()  # P(value) in the training corpus by name types; () if unknown

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(str(v) for v in self.values))
        object.__setattr__(self, "prior", tuple(float(p) for p in self.prior))
        if not self.name:
            raise LabelError("a label column needs a name")
        if not self.values or len(set(self.values)) != len(self.values) or "" in self.values:
            raise LabelError(f"label column {self.name!r} needs distinct, non-empty values")
        if self.prior and len(self.prior) != len(self.values):
            raise LabelError(f"label column {self.name!r}: one prior per value")
        if self.ordinal and any(_number(v) is None for v in self.values):
            raise LabelError(f"ordinal label column {self.name!r} needs numeric values")

    @property
    def size(self) -> int:
        """Ids in the model's embedding: the values and unknown."""
        return len(self.values) + 1

    def id_of(self, value: str | int | None) -> int:
        """A value's id (None: unknown). Integers match their decimal text (1950 is
        "1950"); a value that matches no value exactly may match one ignoring case."""
        if value is None:
            return UNKNOWN
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise LabelError(f"label {self.name!r}: value {value!r} is not a string or integer")
        text = str(value)
        if text in self.values:
            return self.values.index(text) + 1
        folded = [i for i, v in enumerate(self.values) if v.casefold() == text.casefold()]
        if len(folded) == 1:
            return folded[0] + 1
        raise LabelError(
            f"label {self.name!r} has no value {value!r}; allowed: {', '.join(self.values)}"
        )

    def numbers(self) -> list[float]:
        """The values as numbers (ordinal columns)."""
        return [float(v) for v in self.values]


@dataclass(frozen=True)
class LabelSpace:
    columns: tuple[LabelColumn, ...]
    # Every full label set seen in training, with its counts by name types and by births.
    combos: tuple[tuple[str, ...], ...] = ()
    types: tuple[float, ...] = ()
    births: tuple[float, ...] = ()
    # Calibration for posteriors (fitted on validation): P(labels | name) is proportional
    # to P(name | labels) ** (1 / temperature) * prior.
    temperature: float = 1.0
    prior: PriorKind = "types"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "combos", tuple(tuple(str(v) for v in c) for c in self.combos))
        object.__setattr__(self, "types", tuple(float(n) for n in self.types))
        object.__setattr__(self, "births", tuple(float(n) for n in self.births))
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise LabelError(f"label columns repeat a name: {names}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})
        for counts in (self.types, self.births):
            if counts and (len(counts) != len(self.combos) or min(counts) < 0):
                raise LabelError("one non-negative count per label set")
        for combo in self.combos:
            if len(combo) != len(self.columns):
                raise LabelError(f"label set {combo} does not give one value per column")
            for column, value in zip(self.columns, combo, strict=True):
                column.id_of(value)
        if not self.temperature > 0:
            raise LabelError(f"temperature must be > 0, got {self.temperature}")
        if self.prior not in PRIORS:
            raise LabelError(f"prior must be one of {PRIORS}, got {self.prior!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The model's label_sizes: each column's values plus unknown."""
        return tuple(c.size for c in self.columns)

    def column(self, name: str) -> LabelColumn:
        if name not in self._index:
            raise LabelError(f"unknown label {name!r}; labels: {', '.join(self.names) or '(none)'}")
        return self.columns[self._index[name]]

    def encode(self, mapping: Mapping[str, str | int | None]) -> list[int]:
        """Ids in column order; columns not in `mapping` are unknown (0)."""
        ids = [UNKNOWN] * len(self.columns)
        for name, value in mapping.items():
            column = self.column(name)  # raises for an unknown column
            ids[self._index[name]] = column.id_of(value)
        return ids

    def decode(self, ids: Sequence[int]) -> dict[str, str]:
        """The known labels of an id list, by column name (unknowns left out)."""
        if len(ids) != len(self.columns):
            raise LabelError(f"expected {len(self.columns)} label ids, got {len(ids)}")
        out = {}
        for column, i in zip(self.columns, ids, strict=True):
            if not 0 <= i < column.size:
                raise LabelError(f"label {column.name!r} has no id {i}")
            if i != UNKNOWN:
                out[column.name] = column.values[i - 1]
        return out

    def counts(self, kind: PriorKind) -> tuple[float, ...]:
        if kind not in PRIORS:
            raise LabelError(f"prior must be one of {PRIORS}, got {kind!r}")
        return self.types if kind == "types" else self.births

    def joint(self, kind: PriorKind) -> list[tuple[list[int], float]]:
        """Every label set with a positive prior, as ids, with its probability."""
        counts = self.counts(kind)
        total = sum(counts)
        return [
            (self.encode(dict(zip(self.names, combo, strict=True))), n / total)
            for combo, n in zip(self.combos, counts, strict=True)
            if n > 0
        ]

    def marginal(self, name: str, kind: PriorKind) -> list[float]:
        """P(value) of one column: from the joint counts, else the column's prior, else
        uniform."""
        column = self.column(name)
        if self.counts(kind):
            probs = [0.0] * len(column.values)
            for ids, p in self.joint(kind):
                probs[ids[self._index[name]] - 1] += p
            return probs
        if column.prior:
            total = sum(column.prior)
            return [p / total for p in column.prior]
        return [1.0 / len(column.values)] * len(column.values)

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        rows: Iterable[tuple[Sequence[str | None], float]],
        ordinal: Collection[str] | None = None,
    ) -> LabelSpace:
        """From a labelled corpus: per name type its values in the columns `names` (None:
        not given) and its count. Values are sorted, numerically when all are numbers;
        a column is ordinal when `ordinal` names it (None: when its values are numbers).
        Only rows with every label count toward the joint priors."""
        values: list[set[str]] = [set() for _ in names]
        types: Counter[tuple[str, ...]] = Counter()
        births: defaultdict[tuple[str, ...], float] = defaultdict(float)
        for labels, count in rows:
            given = [None if v is None else str(v) for v in labels]
            if len(given) != len(names):
                raise LabelError(f"label row {list(labels)} does not match columns {names}")
            for seen, v in zip(values, given, strict=True):
                if v is not None:
                    seen.add(v)
            if all(v is not None for v in given):
                combo = tuple(v for v in given if v is not None)
                types[combo] += 1
                births[combo] += count
        combos = sorted(types)
        columns = []
        for i, (name, seen) in enumerate(zip(names, values, strict=True)):
            numeric = all(_number(v) is not None for v in seen)
            ordered = sorted(seen, key=lambda v: (_number(v) or 0.0, v) if numeric else (0.0, v))
            by_value = dict.fromkeys(ordered, 0.0)
            for combo in combos:
                by_value[combo[i]] += types[combo]
            total = sum(by_value.values()) or 1.0
            is_ordinal = numeric if ordinal is None else name in ordinal
            prior = tuple(by_value[v] / total for v in ordered) if combos else ()
            columns.append(LabelColumn(name, tuple(ordered), is_ordinal, prior))
        return cls(
            tuple(columns),
            tuple(combos),
            tuple(float(types[c]) for c in combos),
            tuple(float(births[c]) for c in combos),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [
                {
                    "name": c.name,
                    "values": list(c.values),
                    "ordinal": c.ordinal,
                    "prior": list(c.prior),
                }
                for c in self.columns
            ],
            "joint": {
                "combos": [list(c) for c in self.combos],
                "types": list(self.types),
                "births": list(self.births),
            },
            "temperature": self.temperature,
            "prior": self.prior,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelSpace:
        """Raises LabelError for a malformed description."""
        try:
            columns = tuple(
                LabelColumn(c["name"], tuple(c["values"]), bool(c["ordinal"]), tuple(c["prior"]))
                for c in d["columns"]
            )
            joint = d.get("joint", {})
            return cls(
                columns,
                tuple(tuple(c) for c in joint.get("combos", ())),
                tuple(joint.get("types", ())),
                tuple(joint.get("births", ())),
                float(d.get("temperature", 1.0)),
                d.get("prior", "types"),
            )
        except (KeyError, TypeError) as e:
            raise LabelError(f"malformed label space: {e!r}") from e

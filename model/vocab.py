"""Character vocabulary: id 0 is the boundary token '.', which starts and ends every name."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

BOUNDARY = "."


class UnknownCharacterError(ValueError):
    """A name holds a character the vocabulary does not know."""

    def __init__(self, name: str, char: str) -> None:
        super().__init__(f"name {name!r} has a character outside the vocabulary: {char!r}")
        self.name = name
        self.char = char


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # chars[0] is BOUNDARY; the rest are sorted

    def __post_init__(self) -> None:
        if not self.chars or self.chars[0] != BOUNDARY:
            raise ValueError(f"vocab must start with the boundary token {BOUNDARY!r}")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("vocab has repeated characters")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("vocab entries must be single characters")
        object.__setattr__(self, "_stoi", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Vocab:
        chars = sorted(set("".join(names)) - {BOUNDARY})
        return cls((BOUNDARY, *chars))

    @property
    def size(self) -> int:
        return len(self.chars)

    @property
    def stoi(self) -> dict[str, int]:
        return self._stoi  # type: ignore[attr-defined, no-any-return]

    def encode(self, name: str) -> list[int]:
        """Ids of the characters of `name` (no boundary tokens added)."""
        stoi = self.stoi
        for ch in name:
            if ch not in stoi or ch == BOUNDARY:
                raise UnknownCharacterError(name, ch)
        return [stoi[ch] for ch in name]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"chars": "".join(self.chars)})

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        return cls(tuple(json.loads(text)["chars"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

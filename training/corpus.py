"""Loading a one-name-per-line corpus, with errors that say where the problem is."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from model.vocab import BOUNDARY

OnBad = Literal["error", "skip"]
# Besides letters (of any alphabet, with their combining accents), what names are made of.
NAME_PUNCTUATION = " -'\u2019"
DEFAULT_RULE = "letters, inner spaces, hyphens and apostrophes"


class CorpusError(ValueError):
    """The corpus file cannot be used as it is."""


@dataclass(frozen=True)
class Corpus:
    names: list[str]
    sha256: str  # of the file's bytes
    lines: int  # lines in the file
    skipped: int  # lines dropped for a bad character (on_bad="skip")
    duplicates: int  # repeated names dropped (or kept, with keep_duplicates)

    def fingerprint(self) -> dict[str, object]:
        return {"sha256": self.sha256, "lines": self.lines, "names": len(self.names)}


def name_character(ch: str) -> bool:
    """The default rule: a letter of any alphabet, a combining mark, or NAME_PUNCTUATION.
    Digits, symbols and control characters are more likely mistakes than names."""
    return ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM"


def load_corpus(
    path: str | Path,
    *,
    lowercase: bool = True,
    allowed: str | None = None,
    on_bad: OnBad = "error",
    keep_duplicates: bool = False,
) -> Corpus:
    """Read names, one per line: NFC-normalize (so an accented letter is one character
    however the file spells it), trim whitespace at the ends, optionally lowercase, drop
    blank lines and (unless keep_duplicates) repeats, keeping first-seen order.

    A line with a character outside `allowed` (None: `name_character`), or holding the
    boundary token '.', is a CorpusError naming the line and the character, or is
    skipped and counted with on_bad="skip". An empty or binary file is a CorpusError.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read corpus: {e.strerror}") from e
    if b"\x00" in data:
        raise CorpusError(f"{path}: looks like a binary file (NUL byte at offset {data.index(0)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x})") from e

    ok = name_character if allowed is None else set(allowed).__contains__
    rule = DEFAULT_RULE if allowed is None else repr(allowed)
    names: list[str] = []
    seen: set[str] = set()
    lines = skipped = duplicates = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        lines = lineno
        name = unicodedata.normalize("NFC", raw).strip()
        if lowercase:
            name = name.lower()
        if not name:
            continue
        bad = next((ch for ch in name if ch == BOUNDARY or not ok(ch)), None)
        if bad is not None:
            if on_bad == "skip":
                skipped += 1
                continue
            raise CorpusError(
                f"{path}:{lineno}: character {bad!r} in {name!r} is not allowed "
                f"(allowed: {rule}; '{BOUNDARY}' marks the ends of names; use on_bad='skip' "
                "to skip such lines)"
            )
        if name in seen:
            duplicates += 1
            if not keep_duplicates:
                continue
        seen.add(name)
        names.append(name)
    if not names:
        raise CorpusError(f"{path}: no names found (the file is empty or every line was dropped)")
    sha = hashlib.sha256(data).hexdigest()
    return Corpus(names, sha, lines, skipped, duplicates)

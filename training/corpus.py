"""Loading a corpus, with errors that say where the problem is.

Two formats: one name per line, or a CSV (`.csv`, `.csv.gz`) with a header: a `name`
column, any number of categorical label columns (say `sex`, `decade`), and an optional
`count` column (how many the row stands for; 1 without it). A CSV's rows become a
LabelTable beside the distinct names; each label column's values are those the corpus
uses (ordinal when all of them are integers, then sorted as numbers).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from model.vocab import BOUNDARY

OnBad = Literal["error", "skip"]
# Besides letters (of any alphabet, with their combining accents), what names are made of.
NAME_PUNCTUATION = " -'\u2019"
DEFAULT_RULE = "letters, inner spaces, hyphens and apostrophes"
NAME, COUNT = "name", "count"  # the CSV columns that are not labels
Row = tuple[str, tuple[str, ...], int]  # name, its label values, count


class CorpusError(ValueError):
    """The corpus file cannot be used as it is."""


@dataclass(frozen=True)
class LabelTable:
    """A labelled corpus's rows, one per distinct (name, label values)."""

    columns: tuple[str, ...]  # label columns, in the header's order
    values: tuple[tuple[str, ...], ...]  # each column's values, as the file writes them
    ordinal: tuple[bool, ...]  # each column: all values integers (sorted as numbers)
    rows: list[Row]  # in first-seen order; repeated rows merged, their counts added


@dataclass(frozen=True)
class Corpus:
    names: list[str]  # distinct (unless keep_duplicates), in first-seen order
    sha256: str  # of the file's bytes
    lines: int  # lines in the file
    skipped: int  # lines dropped for a bad character (on_bad="skip")
    duplicates: int  # repeated names (labelled: rows) dropped, merged or kept
    labels: LabelTable | None = None  # a CSV's rows and label columns

    def fingerprint(self) -> dict[str, object]:
        out: dict[str, object] = {"sha256": self.sha256, "lines": self.lines}
        out["names"] = len(self.names)
        if self.labels is not None:
            out.update(rows=len(self.labels.rows), label_columns=list(self.labels.columns))
        return out


def name_character(ch: str) -> bool:
    """The default rule: a letter of any alphabet, a combining mark, or NAME_PUNCTUATION.
    Digits, symbols and control characters are more likely mistakes than names."""
    return ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM"


def is_csv(path: str | Path) -> bool:
    return Path(path).name.lower().removesuffix(".gz").endswith(".csv")


def read_text(path: Path) -> tuple[str, str]:
    """The file as UTF-8 text (gunzipped if its name ends in .gz), and the sha256 of its
    bytes as they are on disk."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read corpus: {e.strerror}") from e
    sha = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise CorpusError(f"{path}: not a readable gzip file ({e})") from e
    if b"\x00" in data:
        raise CorpusError(f"{path}: looks like a binary file (NUL byte at offset {data.index(0)})")
    try:
        return data.decode("utf-8"), sha
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x})") from e


class NameRule:
    """Cleans a raw name (NFC, trimmed, optionally lowercased) and finds its bad character."""

    def __init__(self, lowercase: bool, allowed: str | None) -> None:
        self.lowercase = lowercase
        self.ok: Callable[[str], bool] = (
            name_character if allowed is None else set(allowed).__contains__
        )
        self.rule = DEFAULT_RULE if allowed is None else repr(allowed)
        self.good: set[str] = set()  # characters already found allowed (a corpus has few)

    def clean(self, raw: str) -> str:
        name = unicodedata.normalize("NFC", raw).strip()
        return name.lower() if self.lowercase else name

    def error(self, name: str) -> str | None:
        """What is wrong with a name with a character that is not allowed; None if it is
        good."""
        if self.good.issuperset(name):
            return None
        bad = next((ch for ch in name if ch == BOUNDARY or not self.ok(ch)), None)
        if bad is None:
            self.good.update(name)
            return None
        return (
            f"character {bad!r} in {name!r} is not allowed (allowed: {self.rule}; "
            f"'{BOUNDARY}' marks the ends of names; use on_bad='skip' to skip such lines)"
        )


def load_corpus(
    path: str | Path,
    *,
    lowercase: bool = True,
    allowed: str | None = None,
    on_bad: OnBad = "error",
    keep_duplicates: bool = False,
) -> Corpus:
    """Read names: NFC-normalize (so an accented letter is one character however the
    file spells it), trim whitespace at the ends, optionally lowercase, drop blank lines
    and (unless keep_duplicates) repeats, keeping first-seen order. A CSV (see the module
    docstring) is read by `load_labelled`.

    A line with a character outside `allowed` (None: `name_character`), or holding the
    boundary token '.', is a CorpusError naming the line and the character, or is
    skipped and counted with on_bad="skip". An empty or binary file is a CorpusError.
    """
    path = Path(path)
    if is_csv(path):
        return load_labelled(path, lowercase=lowercase, allowed=allowed, on_bad=on_bad)
    text, sha = read_text(path)
    rule = NameRule(lowercase, allowed)
    names: list[str] = []
    seen: set[str] = set()
    lines = skipped = duplicates = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        lines = lineno
        name = rule.clean(raw)
        if not name:
            continue
        error = rule.error(name)
        if error is not None:
            if on_bad == "skip":
                skipped += 1
                continue
            raise CorpusError(f"{path}:{lineno}: {error}")
        if name in seen:
            duplicates += 1
            if not keep_duplicates:
                continue
        seen.add(name)
        names.append(name)
    if not names:
        raise CorpusError(f"{path}: no names found (the file is empty or every line was dropped)")
    return Corpus(names, sha, lines, skipped, duplicates)


def load_labelled(
    path: Path, *, lowercase: bool = True, allowed: str | None = None, on_bad: OnBad = "error"
) -> Corpus:
    """A CSV corpus: names checked as in one-name-per-line files (on_bad applies to
    them); a row with the wrong number of fields, an empty name or label, or a count
    that is not a positive integer is a CorpusError naming its line. Repeated rows (the
    same name and labels, after cleaning) are merged, their counts added."""
    text, sha = read_text(path)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    where = f"{path}:1"
    if NAME not in header:
        raise CorpusError(f"{where}: the header {','.join(header)!r} has no {NAME!r} column")
    if "" in header or len(set(header)) != len(header):
        raise CorpusError(f"{where}: header columns must be named and distinct: {header}")
    columns = tuple(h for h in header if h not in (NAME, COUNT))
    name_at, count_at = header.index(NAME), header.index(COUNT) if COUNT in header else None
    label_at = [header.index(c) for c in columns]
    rule = NameRule(lowercase, allowed)
    index: dict[tuple[str, tuple[str, ...]], int] = {}
    rows: list[Row] = []
    skipped = duplicates = 0

    def bad_row(problem: str) -> CorpusError:
        return CorpusError(f"{path}:{reader.line_num}: {problem}")

    for fields in reader:
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            expected = f"{len(header)} fields ({','.join(header)})"
            raise bad_row(f"expected {expected}, got {len(fields)}")
        name = rule.clean(fields[name_at])
        if not name:
            raise bad_row("empty name")
        error = rule.error(name)
        if error is not None:
            if on_bad == "skip":
                skipped += 1
                continue
            raise bad_row(error)
        values = tuple([fields[i].strip() for i in label_at])
        if not all(values):
            raise bad_row(f"empty value for label {columns[values.index('')]!r}")
        count = 1
        if count_at is not None:
            raw = fields[count_at].strip()
            if not raw.isdecimal() or int(raw) < 1:
                raise bad_row(f"count {fields[count_at]!r} is not a positive whole number")
            count = int(raw)
        key = (name, values)
        if key in index:
            duplicates += 1
            old = rows[index[key]]
            rows[index[key]] = (name, values, old[2] + count)
        else:
            index[key] = len(rows)
            rows.append((name, values, count))
    if not rows:
        raise CorpusError(f"{path}: no rows found (the file has a header only, or none)")
    names = list(dict.fromkeys(name for name, _, _ in rows))
    found = [sorted({v[i] for _, v, _ in rows}) for i in range(len(columns))]
    ordinal = tuple(all(is_integer(v) for v in vs) for vs in found)
    column_values = tuple(
        tuple(sorted(vs, key=int) if o else vs) for vs, o in zip(found, ordinal, strict=True)
    )
    table = LabelTable(columns, column_values, ordinal, rows)
    lines = text.count("\n") + (not text.endswith("\n"))
    return Corpus(names, sha, lines, skipped, duplicates, table)


def is_integer(value: str) -> bool:
    return value.removeprefix("-").isdecimal()

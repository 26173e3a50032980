"""CSV corpora: a name column, label columns and counts; bad rows named by file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from training.corpus import CorpusError, load_corpus

REPO = Path(__file__).resolve().parents[2]
GOOD = "name,sex,decade,count\nEmma,F,2010,300\nemma,F,1990,20\nNoah,M,2010,250\nemma,M,2010,7\n"


def write(tmp_path: Path, text: str, name: str = "corpus.csv") -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("file_name", ["corpus.csv", "corpus.csv.gz"])
def test_rows_labels_and_counts(tmp_path: Path, file_name: str) -> None:
    corpus = load_corpus(write(tmp_path, GOOD, file_name))
    assert corpus.names == ["emma", "noah"]  # distinct, lowercased, first-seen order
    table = corpus.labels
    assert table is not None and table.columns == ("sex", "decade")
    assert table.values == (("F", "M"), ("1990", "2010"))
    assert table.ordinal == (False, True)
    assert table.rows[0] == ("emma", ("F", "2010"), 300)
    assert len(table.rows) == 4
    assert corpus.fingerprint()["rows"] == 4


def test_ordinal_values_sort_as_numbers_and_text_as_text(tmp_path: Path) -> None:
    text = "era,name,house\n900,ann,b\n-50,bo,a\n1200,cy,c\n"
    table = load_corpus(write(tmp_path, text)).labels
    assert table is not None and table.columns == ("era", "house")
    assert table.values == (("-50", "900", "1200"), ("a", "b", "c"))
    assert table.ordinal == (True, False)


def test_without_count_each_row_counts_once_and_repeats_add_up(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "name,race\nelrond,elf\nElrond,elf\ngimli,dwarf\n"))
    assert corpus.labels is not None
    assert corpus.labels.rows == [("elrond", ("elf",), 2), ("gimli", ("dwarf",), 1)]
    assert corpus.duplicates == 1


def test_no_label_columns_is_a_table_without_columns(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "count,name\n3,ann\n2,bo\n"))
    assert corpus.labels is not None and corpus.labels.columns == ()
    assert corpus.labels.rows == [("ann", (), 3), ("bo", (), 2)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("sex,count\nF,3\n", r"corpus.csv:1: the header 'sex,count' has no 'name' column"),
        ("name,sex,sex\nann,F,F\n", r"corpus.csv:1: header columns must be named and distinct"),
        ("name,,count\nann,F,3\n", r"corpus.csv:1: header columns must be named and distinct"),
        ("name,sex,count\nann,F,3\nbo,M\n", r"corpus.csv:3: expected 3 fields .*, got 2"),
        ("name,sex,count\nann,F,3\nbo,M,2,1\n", r"corpus.csv:3: expected 3 fields .*, got 4"),
        ("name,sex,count\nann,F,3\nbo, ,2\n", r"corpus.csv:3: empty value for label 'sex'"),
        ("name,sex,count\nann,F,3\n,M,2\n", r"corpus.csv:3: empty name"),
        ("name,sex,count\nann,F,three\n", r"corpus.csv:2: count 'three' is not a positive"),
        ("name,sex,count\nann,F,0\n", r"corpus.csv:2: count '0' is not a positive"),
        ("name,sex,count\nann,F,-4\n", r"corpus.csv:2: count '-4' is not a positive"),
        ("name,sex,count\nann,F,1.5\n", r"corpus.csv:2: count '1.5' is not a positive"),
        ("name,sex,count\nann,F,3\nzo3y,F,1\n", r"corpus.csv:3: character '3' in 'zo3y'"),
        ("name,sex,count\n", r"corpus.csv: no rows found"),
        ("", r"corpus.csv:1: the header '' has no 'name' column"),
    ],
)
def test_bad_rows_name_file_line_and_problem(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(CorpusError, match=error):
        load_corpus(write(tmp_path, text))


def test_skip_mode_skips_bad_names_only(tmp_path: Path) -> None:
    path = write(tmp_path, "name,sex\nann,F\nzo3y,F\nst. john,M\nbo,M\n")
    corpus = load_corpus(path, on_bad="skip")
    assert corpus.names == ["ann", "bo"] and corpus.skipped == 2
    with pytest.raises(CorpusError, match=":3: count"):  # a broken row is never skipped
        load_corpus(write(tmp_path, "name,count\nann,1\nbo,x\n"), on_bad="skip")


def test_a_broken_gzip_file_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv.gz"
    path.write_bytes(b"name,sex\nann,F\n")
    with pytest.raises(CorpusError, match="not a readable gzip file"):
        load_corpus(path)


def test_the_shipped_labelled_corpus() -> None:
    corpus = load_corpus(REPO / "data" / "babynames.csv.gz")
    assert corpus.labels is not None and corpus.labels.columns == ("sex", "decade")
    assert len(corpus.labels.rows) == 359_563 and len(corpus.names) == 97_310
    assert corpus.labels.values[0] == ("F", "M")
    assert corpus.labels.values[1] == tuple(str(d) for d in range(1880, 2020, 10))

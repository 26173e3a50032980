from pathlib import Path

import pytest

from training.corpus import CorpusError, load_corpus


def write(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_trims_lowercases_drops_blanks_and_duplicates(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "  Emma \n\nava\nEMMA\n\t\nzoe"))
    assert corpus.names == ["emma", "ava", "zoe"]
    assert corpus.lines == 6 and corpus.duplicates == 1
    assert len(corpus.sha256) == 64


def test_keep_duplicates_and_case(tmp_path: Path) -> None:
    path = write(tmp_path, "ava\nava\n")
    assert load_corpus(path, keep_duplicates=True).names == ["ava", "ava"]
    with pytest.raises(CorpusError, match="'A'"):
        load_corpus(write(tmp_path, "Ava\n"), lowercase=False)


def test_bad_character_quotes_line_and_character(tmp_path: Path) -> None:
    path = write(tmp_path, "emma\nava\nzo3y\n")
    with pytest.raises(CorpusError, match=r"corpus.txt:3: character '3' in 'zo3y'"):
        load_corpus(path)


def test_skip_mode_counts(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "emma\nzo3y\nan-na\nava\n"), on_bad="skip")
    assert corpus.names == ["emma", "ava"] and corpus.skipped == 2


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no names"):
        load_corpus(write(tmp_path, ""))
    with pytest.raises(CorpusError, match="no names"):
        load_corpus(write(tmp_path, "\n  \n"))


def test_binary_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="binary"):
        load_corpus(write(tmp_path, b"emma\x00\x01\x02"))
    with pytest.raises(CorpusError, match=r":2: not UTF-8"):
        load_corpus(write(tmp_path, b"emma\n\xff\xfe\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read"):
        load_corpus(tmp_path / "nope.txt")

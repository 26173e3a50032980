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
    assert load_corpus(write(tmp_path, "Ava\n"), lowercase=False).names == ["Ava"]
    with pytest.raises(CorpusError, match="'A'"):
        load_corpus(write(tmp_path, "Ava\n"), lowercase=False, allowed="av")


def test_bad_character_quotes_line_and_character(tmp_path: Path) -> None:
    path = write(tmp_path, "emma\nava\nzo3y\n")
    with pytest.raises(CorpusError, match=r"corpus.txt:3: character '3' in 'zo3y'"):
        load_corpus(path)


def test_skip_mode_counts(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path, "emma\nzo3y\nan.na\nava\n"), on_bad="skip")
    assert corpus.names == ["emma", "ava"] and corpus.skipped == 2


def test_any_alphabet_by_default(tmp_path: Path) -> None:
    """Letters of any alphabet, inner spaces, hyphens and apostrophes make names; ends are
    trimmed and an accent is one character however the file spells it."""
    text = " Jean-Luc \nO'Brien\nMary Ann\nZoe\u0308\nZoë\nΑλέξης\n"
    corpus = load_corpus(write(tmp_path, text))
    assert corpus.names == ["jean-luc", "o'brien", "mary ann", "zoë", "αλέξης"]
    assert corpus.duplicates == 1


def test_the_boundary_token_is_never_part_of_a_name(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r":2: character '\.' in 'st. john'"):
        load_corpus(write(tmp_path, "ava\nSt. John\n"))
    with pytest.raises(CorpusError, match=r"character '\.'"):
        load_corpus(write(tmp_path, "ava\nst.john\n"), allowed="ajhnostv.")


def test_a_given_alphabet_makes_other_characters_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "emma\nzoë\nava\n")
    with pytest.raises(CorpusError, match=r":2: character 'ë' in 'zoë' is not allowed"):
        load_corpus(path, allowed="aemvz o")
    corpus = load_corpus(path, allowed="aemvz o", on_bad="skip")
    assert corpus.names == ["emma", "ava"] and corpus.skipped == 1


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

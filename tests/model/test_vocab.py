import pytest

from model import UnknownCharacterError, Vocab


def test_built_from_names_with_boundary_first() -> None:
    vocab = Vocab.from_names(["emma", "olivia", "ava"])
    assert vocab.chars[0] == "."
    assert vocab.chars[1:] == tuple(sorted(set("emmaoliviaava")))
    assert vocab.encode("ava") == [vocab.stoi["a"], vocab.stoi["v"], vocab.stoi["a"]]
    assert vocab.decode(vocab.encode("olivia")) == "olivia"


def test_json_round_trip(tmp_path) -> None:
    vocab = Vocab.from_names(["zoe", "abe"])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert Vocab.load(path) == vocab
    assert Vocab.from_json(vocab.to_json()).stoi == vocab.stoi


def test_unknown_character_names_the_name_and_character() -> None:
    vocab = Vocab.from_names(["abc"])
    with pytest.raises(UnknownCharacterError) as e:
        vocab.encode("abz")
    assert e.value.char == "z" and "abz" in str(e.value)
    with pytest.raises(UnknownCharacterError):
        vocab.encode("a.b")  # the boundary token is never part of a name


def test_invalid_vocab_rejected() -> None:
    with pytest.raises(ValueError):
        Vocab(("a", "."))
    with pytest.raises(ValueError):
        Vocab((".", "a", "a"))

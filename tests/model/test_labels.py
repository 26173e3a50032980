"""Label spaces: encoding with clear errors, priors counted from a corpus, round trip."""

from __future__ import annotations

import json

import pytest

from model.labels import LabelColumn, LabelError, LabelSpace

ROWS = [  # (sex, decade) of each name type, and its births
    (("F", "1950"), 100.0),
    (("F", "1950"), 300.0),
    (("M", "1950"), 50.0),
    (("F", "2010"), 20.0),
    (("M", "880"), 5.0),  # sorts numerically before 1950
    (("M", None), 7.0),  # a partial row: its values count, not its joint
]


@pytest.fixture
def space() -> LabelSpace:
    return LabelSpace.build(["sex", "decade"], ROWS)


def test_build_sorts_values_and_finds_ordinal_columns(space: LabelSpace) -> None:
    sex, decade = space.columns
    assert sex == LabelColumn("sex", ("F", "M"), False, (3 / 5, 2 / 5))
    assert decade.values == ("880", "1950", "2010") and decade.ordinal
    assert space.sizes == (3, 4)
    assert LabelSpace.build(["decade"], [(("1950",), 1)], ordinal=()).columns[0].ordinal is False


def test_priors_by_types_and_by_births(space: LabelSpace) -> None:
    assert dict(zip(space.combos, space.types, strict=True)) == {
        ("F", "1950"): 2,
        ("F", "2010"): 1,
        ("M", "1950"): 1,
        ("M", "880"): 1,
    }
    births = dict(zip(space.combos, space.births, strict=True))
    assert births[("F", "1950")] == 400 and births[("M", "880")] == 5
    assert space.marginal("sex", "types") == pytest.approx([3 / 5, 2 / 5])
    assert space.marginal("sex", "births") == pytest.approx([420 / 475, 55 / 475])
    joint = dict((tuple(ids), p) for ids, p in space.joint("births"))
    assert joint[(1, 2)] == pytest.approx(400 / 475)
    assert sum(joint.values()) == pytest.approx(1.0)


def test_encode_and_decode(space: LabelSpace) -> None:
    assert space.encode({"sex": "M", "decade": 1950}) == [2, 2]
    assert space.encode({"decade": "2010"}) == [0, 3]  # partial: the rest unknown
    assert space.encode({}) == [0, 0]
    assert space.encode({"sex": "f", "decade": None}) == [1, 0]  # case, JSON null
    assert space.decode([2, 0]) == {"sex": "M"}
    assert space.decode(space.encode({"sex": "F", "decade": 880})) == {
        "sex": "F",
        "decade": "880",
    }


def test_errors_name_the_column_or_value_and_list_the_allowed(space: LabelSpace) -> None:
    with pytest.raises(LabelError, match=r"unknown label 'era'; labels: sex, decade"):
        space.encode({"era": "1950"})
    with pytest.raises(LabelError, match=r"label 'sex' has no value 'X'; allowed: F, M"):
        space.encode({"sex": "X"})
    with pytest.raises(LabelError, match=r"'decade' has no value 1955; allowed: 880, 1950"):
        space.encode({"decade": 1955})
    with pytest.raises(LabelError, match="not a string or integer"):
        space.encode({"decade": 1950.0})  # type: ignore[dict-item]
    with pytest.raises(LabelError, match="no id 4"):
        space.decode([0, 4])
    assert issubclass(LabelError, ValueError)


def test_bad_spaces_are_refused() -> None:
    with pytest.raises(LabelError, match="distinct"):
        LabelColumn("sex", ("F", "F"))
    with pytest.raises(LabelError, match="numeric"):
        LabelColumn("sex", ("F", "M"), ordinal=True)
    with pytest.raises(LabelError, match="one prior per value"):
        LabelColumn("sex", ("F", "M"), prior=(1.0,))
    col = LabelColumn("sex", ("F", "M"))
    with pytest.raises(LabelError, match="repeat"):
        LabelSpace((col, col))
    with pytest.raises(LabelError, match="no value 'X'"):
        LabelSpace((col,), combos=(("X",),), types=(1.0,))
    with pytest.raises(LabelError, match="temperature"):
        LabelSpace((col,), temperature=0.0)


def test_round_trip_through_json(space: LabelSpace) -> None:
    calibrated = LabelSpace(
        space.columns, space.combos, space.types, space.births, temperature=0.8, prior="births"
    )
    again = LabelSpace.from_dict(json.loads(json.dumps(calibrated.to_dict())))
    assert again == calibrated
    assert again.encode({"sex": "M"}) == [2, 0]
    with pytest.raises(LabelError, match="malformed"):
        LabelSpace.from_dict({"columns": [{"name": "sex"}]})


def test_a_space_without_counts_uses_the_column_priors_or_uniform() -> None:
    space = LabelSpace(
        (LabelColumn("sex", ("F", "M"), prior=(3.0, 1.0)), LabelColumn("x", ("a", "b")))
    )
    assert space.marginal("sex", "types") == [0.75, 0.25]
    assert space.marginal("x", "births") == [0.5, 0.5]
    assert space.joint("types") == []

"""Label fields of requests, checked against the loaded checkpoint's label space: the
schema knows their shape, only the checkpoint knows which columns and values exist."""

from __future__ import annotations

from collections.abc import Mapping

from model.labels import LabelError, LabelSpace

NO_LABELS = "this checkpoint has no labels"


def label_problems(
    space: LabelSpace | None, labels: Mapping[str, str | int] | None
) -> list[tuple[str, str]]:
    """(field, message) for every label name or value the checkpoint does not know; an
    empty or missing `labels` is always fine."""
    if not labels:
        return []
    if space is None:
        return [("labels", NO_LABELS)]
    problems = []
    for name, value in labels.items():
        try:
            space.column(name).id_of(value)
        except LabelError as e:
            problems.append((f"labels.{name}", str(e)))
    return problems


def used_labels(space: LabelSpace | None, labels: Mapping[str, str | int] | None) -> dict[str, str]:
    """The labels a request is served under, as the checkpoint spells them ("f" given,
    "F" used); columns left out are unknown. `labels` has passed label_problems."""
    if space is None or not labels:
        return {}
    return space.decode(space.encode(labels))

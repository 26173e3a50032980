"""The API's answers computed in this process, on a checkpoint loaded here (no server):
the same checks as the routers, with the same messages, and the same response schemas,
so `namegen ... --json` prints what the server would send for the same request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from app.config import Settings
from app.labels import NO_LABELS, label_problems, used_labels
from app.schemas import GenerateOut, InferOut, InferRequest, ScoreRequest, ScoresOut
from model import UnknownCharacterError
from model.engine import Engine
from model.request import GenerateRequest

Problem = tuple[str, str]  # (field, message), as in the API's error details


class Refused(Exception):
    """What the API would answer with a 4xx: every problem found, each naming its field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            "; ".join(m if m.startswith(f + " ") else f"{f}: {m}" for f, m in self.problems)
        )


_default_threads: list[int] = []


def use_threads(settings: Settings, rows: int) -> None:
    """torch threads as the server's worker sets them: few for small work, whose ops are
    too short to share out (5 names: 40 ms with one thread, 250 with two on a busy
    machine), one per core for large."""
    import torch

    _default_threads.append(torch.get_num_threads())  # one per core, before any change
    large = rows >= settings.large_batch_rows
    threads = settings.large_batch_threads if large else settings.torch_threads
    torch.set_num_threads(threads or _default_threads[0])


def validation_problems(error: ValidationError) -> list[Problem]:
    """(field, message) of each pydantic error, located as app/errors.py locates them."""
    problems = []
    for err in error.errors():
        ctx = err.get("ctx") or {}
        field = ctx.get("field") or ".".join(str(p) for p in err["loc"]) or "body"
        problems.append((str(field), err["msg"]))
    return problems


def generate(engine: Engine, settings: Settings, req: GenerateRequest) -> GenerateOut:
    problems = []
    if req.n > settings.max_n:
        problems.append(("n", f"must be at most {settings.max_n}"))
    if req.max_length > settings.max_length_limit:
        problems.append(("max_length", f"must be at most {settings.max_length_limit}"))
    problems += engine.request_problems(req)
    problems += label_problems(engine.checkpoint.labels, req.labels)
    if problems:
        raise Refused(problems)
    engine.budget_factor = settings.budget_factor
    use_threads(settings, req.n)
    result = engine.generate(req)
    return GenerateOut.model_validate(
        {
            "names": [
                {"name": g.name, "logprob": g.logprob, "in_corpus": g.in_corpus}
                for g in result.names
            ],
            "complete": result.complete,
            "stopped": result.stopped,
            "sampled": result.sampled,
            "seed": result.seed,
        }
    )


def name_problems(engine: Engine, settings: Settings, names: list[str]) -> list[Problem]:
    """As app/routers/score.py's: every name the model cannot take."""
    if len(names) > settings.max_score_names:
        return [("names", f"at most {settings.max_score_names} names per request")]
    problems = []
    for i, name in enumerate(names):
        if not name:
            problems.append((f"names.{i}", "must not be empty"))
        elif len(name) > settings.max_name_chars:
            problems.append((f"names.{i}", f"longer than {settings.max_name_chars} characters"))
        else:
            try:
                engine.vocab.encode(name)
            except UnknownCharacterError as e:
                problems.append(
                    (f"names.{i}", f"{name!r} has a character outside the vocabulary: {e.char!r}")
                )
    return problems


def score(
    engine: Engine,
    settings: Settings,
    names: list[str],
    labels: Mapping[str, str | int] | None = None,
) -> ScoresOut:
    try:
        body = ScoreRequest.model_validate({"names": names, "labels": labels})
    except ValidationError as e:
        raise Refused(validation_problems(e)) from None
    space = engine.checkpoint.labels
    problems = name_problems(engine, settings, body.names) + label_problems(space, body.labels)
    if problems:
        raise Refused(problems)
    used = used_labels(space, body.labels)
    use_threads(settings, len(body.names))
    scored = engine.score(body.names, used or None)
    end = engine.vocab.chars[0]
    return ScoresOut.model_validate(
        {
            "scores": [
                {
                    "name": s.score.name,
                    "logprob": s.score.logprob,
                    "logprob_per_char": s.score.logprob_per_char,
                    "perplexity": s.score.perplexity,
                    "char_probs": [
                        {"char": c, "prob": p}
                        for c, p in zip(s.score.name + end, s.score.char_probs, strict=True)
                    ],
                    "in_corpus": s.in_corpus,
                }
                for s in scored
            ],
            "labels": used,
        }
    )


def infer(engine: Engine, settings: Settings, names: list[str]) -> InferOut:
    # the router's own answer (it imports FastAPI: infer only)
    from app.routers.infer import infer_out
    from model.posterior import infer_labels

    space = engine.checkpoint.labels
    if space is None:
        raise Refused([("checkpoint", f"{NO_LABELS}: infer needs a conditional checkpoint")])
    try:
        body = InferRequest.model_validate({"names": names})
    except ValidationError as e:
        raise Refused(validation_problems(e)) from None
    problems = name_problems(engine, settings, body.names)
    if problems:
        raise Refused(problems)
    use_threads(settings, len(body.names))
    return infer_out(engine, infer_labels(engine.model, engine.vocab, space, body.names))

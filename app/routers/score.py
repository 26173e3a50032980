from fastapi import APIRouter, Request, Response

from app.answers import json_answer
from app.deps import ServiceDep, run_job
from app.errors import FieldError, FieldErrors
from app.jobs import ScoreJob
from app.labels import label_problems, used_labels
from app.schemas import ERROR_RESPONSES, ScoreRequest, ScoresOut
from app.security import API_KEY_SECURITY
from app.service import Service
from model import UnknownCharacterError

router = APIRouter(tags=["names"])


def name_problems(service: Service, names: list[str]) -> list[tuple[str, str]]:
    """Every name the model cannot take (empty, too long, a character outside the
    vocabulary), as (field, message); raises FieldError for too many names."""
    engine, settings = service.engine, service.settings
    if len(names) > settings.max_score_names:
        raise FieldError("names", f"at most {settings.max_score_names} names per request")
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


@router.post(
    "/score",
    response_model=ScoresOut,
    summary="Score candidate names",
    responses=ERROR_RESPONSES,
    openapi_extra=API_KEY_SECURITY,
)
async def score(body: ScoreRequest, service: ServiceDep, request: Request) -> Response:
    """Log-likelihood of each name under the model (names are trimmed and lowercased),
    under `labels` when given. A request with bad names or labels is refused with one
    detail per problem."""
    engine, names = service.engine, body.names
    space = engine.checkpoint.labels
    problems = name_problems(service, names) + label_problems(space, body.labels)
    if problems:
        raise FieldErrors(problems)
    labels = used_labels(space, body.labels)
    scored = await run_job(service, request, ScoreJob(names, labels or None))
    service.metrics.names_scored.inc(len(scored))
    end = engine.vocab.chars[0]
    # Plain values, built and encoded in a thread when large (app/answers.py).
    return await json_answer(
        lambda: {
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
            "labels": labels,
        },
        "scores",
        sum(len(s.score.char_probs) for s in scored),
    )

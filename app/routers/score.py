from fastapi import APIRouter, Request, Response

from app.batching import ScoreJob
from app.deps import ServiceDep, run_job
from app.errors import FieldError, FieldErrors
from app.schemas import ERROR_RESPONSES, ScoreRequest, ScoresOut, json_response
from app.security import API_KEY_SECURITY
from model import UnknownCharacterError

router = APIRouter(tags=["names"])


@router.post(
    "/score",
    response_model=ScoresOut,
    summary="Score candidate names",
    responses=ERROR_RESPONSES,
    openapi_extra=API_KEY_SECURITY,
)
async def score(body: ScoreRequest, service: ServiceDep, request: Request) -> Response:
    """Log-likelihood of each name under the model (names are trimmed and lowercased).
    A request with bad names is refused with one detail per bad name."""
    engine, settings = service.engine, service.settings
    names = body.names
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
    if problems:
        raise FieldErrors(problems)
    scored = await run_job(service, request, ScoreJob(names))
    service.metrics.names_scored.inc(len(scored))
    end = engine.vocab.chars[0]
    # Validated from plain dicts in one call (see generate.py).
    out = ScoresOut.model_validate(
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
            ]
        }
    )
    return json_response(out)

from typing import Any

from fastapi import APIRouter, Request, Response

from app.answers import json_answer
from app.deps import ServiceDep, run_job
from app.errors import FieldErrors
from app.jobs import GenerateJob
from app.labels import label_problems
from app.schemas import ERROR_RESPONSES, GenerateOut
from app.security import API_KEY_SECURITY
from model.request import GenerateRequest, GenerateResult

router = APIRouter(tags=["names"])


@router.post(
    "/generate",
    response_model=GenerateOut,
    summary="Generate names",
    responses=ERROR_RESPONSES,
    openapi_extra=API_KEY_SECURITY,
)
async def generate(body: GenerateRequest, service: ServiceDep, request: Request) -> Response:
    """Sample `n` names in one batch. Every name comes with its log-probability under the
    (forward) model at temperature 1, the same figure /score gives for it. `ends_with`
    and `contains` need a checkpoint with a backward network (GET /model lists its
    directions); the request schema says what distribution each constraint samples."""
    engine, settings = service.engine, service.settings
    # what depends on this server's settings and model, checked before the request can
    # join (and so fail) a batch
    problems = []
    if body.n > settings.max_n:
        problems.append(("n", f"must be at most {settings.max_n}"))
    if body.max_length > settings.max_length_limit:
        problems.append(("max_length", f"must be at most {settings.max_length_limit}"))
    problems += engine.request_problems(body)
    problems += label_problems(engine.checkpoint.labels, body.labels)
    if problems:
        raise FieldErrors(problems)
    result = await run_job(service, request, GenerateJob(body))
    service.metrics.names_generated.inc(len(result.names))
    if result.stopped == "time":
        service.metrics.stopped_by_time.inc()
    return await json_answer(lambda: answer(result), "names", 3 * len(result.names))


def answer(result: GenerateResult) -> dict[str, Any]:
    """The GenerateOut of `result`, as plain values (app/answers.py)."""
    return {
        "names": [
            {"name": g.name, "logprob": g.logprob, "in_corpus": g.in_corpus} for g in result.names
        ],
        "complete": result.complete,
        "stopped": result.stopped,
        "sampled": result.sampled,
        "seed": result.seed,
    }

from fastapi import APIRouter, Request, Response

from app.deps import ServiceDep, run_job
from app.errors import FieldError
from app.schemas import ERROR_RESPONSES, GenerateIn, GenerateOut, json_response
from app.security import API_KEY_SECURITY
from model import UnknownCharacterError
from model.engine import GenerateRequest, GenerateResult

router = APIRouter(tags=["names"])


@router.post(
    "/generate",
    response_model=GenerateOut,
    summary="Generate names",
    responses=ERROR_RESPONSES,
    openapi_extra=API_KEY_SECURITY,
)
async def generate(body: GenerateIn, service: ServiceDep, request: Request) -> Response:
    """Sample `n` names in one batch. Every name comes with its log-probability under the
    model at temperature 1, the same figure /score gives for it."""
    engine, settings = service.engine, service.settings
    if body.n > settings.max_n:
        raise FieldError("n", f"must be at most {settings.max_n}")
    if body.max_length > settings.max_length_limit:
        raise FieldError("max_length", f"must be at most {settings.max_length_limit}")
    req = GenerateRequest(**{**body.model_dump(), "prefix": body.prefix.lower()})
    try:  # checked here, so a bad request can never fail a batch it would have joined
        engine.vocab.encode(req.prefix)
    except UnknownCharacterError as e:
        raise FieldError("prefix", f"character {e.char!r} is not in the model's vocabulary") from e
    result: GenerateResult = await run_job(service, request, "generate", req, req.n)
    service.metrics.names_generated.inc(len(result.names))
    # Validated from plain dicts in one call: a pydantic object per name costs about
    # five times as much, which for a large n holds up the event loop.
    out = GenerateOut.model_validate(
        {
            "names": [
                {"name": g.name, "logprob": g.logprob, "in_corpus": g.in_corpus}
                for g in result.names
            ],
            "complete": result.complete,
            "sampled": result.sampled,
            "seed": result.seed,
        }
    )
    return json_response(out)

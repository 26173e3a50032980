"""Labels from names: the posterior of every label column of a conditional checkpoint, by
Bayes' rule over the model (model/posterior.py), with the prior and temperature that
training calibrated on validation names."""

from fastapi import APIRouter, HTTPException, Response
from starlette.concurrency import run_in_threadpool

from app.answers import json_response
from app.deps import ServiceDep
from app.errors import FieldErrors
from app.labels import NO_LABELS
from app.routers.score import name_problems
from app.schemas import ERROR_RESPONSES, ErrorOut, InferOut, InferRequest
from app.security import API_KEY_SECURITY
from app.service import Service
from model.labels import LabelSpace
from model.posterior import NamePosterior, infer_labels

router = APIRouter(tags=["names"])

# Rows (names x label sets) per forward pass: bounds the memory of one request's work.
CHUNK_ROWS = 4096
DECADE = "decade"  # a decade column's values are its first years: the mean year is + 5


def infer(service: Service, names: list[str], space: LabelSpace) -> list[NamePosterior]:
    # Until the inference worker takes these jobs: straight on the model, in the
    # threadpool, in chunks of CHUNK_ROWS rows.
    engine = service.engine
    return infer_labels(engine.model, engine.vocab, space, names, chunk=CHUNK_ROWS)


@router.post(
    "/infer",
    response_model=InferOut,
    summary="Infer the labels of names",
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorOut, "description": "the checkpoint has no labels"},
    },
    openapi_extra=API_KEY_SECURITY,
)
async def infer_route(body: InferRequest, service: ServiceDep) -> Response:
    """For each name (trimmed and lowercased), the probability of every value of every
    label column (P(sex), P(decade)), the most likely value, an ordinal column's expected
    value, and the name's log-probability with its labels unknown: how much the model
    believes in the name at all. A checkpoint without labels answers 409."""
    engine, names = service.engine, body.names
    space = engine.checkpoint.labels
    if space is None:
        raise HTTPException(409, f"{NO_LABELS}: /infer needs a conditional checkpoint")
    problems = name_problems(service, names)
    if problems:
        raise FieldErrors(problems)
    found = await run_in_threadpool(infer, service, names, space)
    out = InferOut.model_validate(
        {
            "results": [
                {
                    "name": p.name,
                    "labels": {
                        column: {
                            "probs": c.probs,
                            "best": c.best,
                            "expected": c.expected,
                            "expected_year": (
                                c.expected + 5
                                if column == DECADE and c.expected is not None
                                else None
                            ),
                        }
                        for column, c in p.columns.items()
                    },
                    "logprob": p.logprob,
                    "in_corpus": p.name in engine.corpus_names,
                }
                for p in found
            ],
            "prior": space.prior,
            "temperature": space.temperature,
            "calibrated": "calibration" in engine.checkpoint.meta,
        }
    )
    return json_response(out)

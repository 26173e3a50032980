"""Labels from names: the posterior of every label column of a conditional checkpoint, by
Bayes' rule over the model (model/posterior.py), with the prior and temperature that
training calibrated on validation names. The scoring behind it (every name under every
label set) is score work for the inference worker: admitted by its size (429 at once
when it cannot be done in time) and run in pieces between other requests' steps."""

import torch
from fastapi import APIRouter, HTTPException, Request, Response

from app.answers import json_response
from app.deps import ServiceDep, run_job
from app.errors import FieldErrors
from app.jobs import InferJob
from app.labels import NO_LABELS
from app.routers.score import name_problems
from app.schemas import ERROR_RESPONSES, ErrorOut, InferOut, InferRequest
from app.security import API_KEY_SECURITY
from model.engine import Engine
from model.posterior import NamePosterior, posteriors, scored_sets

router = APIRouter(tags=["names"])

DECADE = "decade"  # a decade column's values are its first years: the mean year is + 5


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
async def infer_route(body: InferRequest, service: ServiceDep, request: Request) -> Response:
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
    hyp, sets = scored_sets(space)
    job = InferJob(names, [tuple(ids) for ids in sets.tolist()])
    scored = await run_job(service, request, job)
    logp = torch.tensor([s.score.logprob for s in scored]).view(len(names), len(sets))
    found = posteriors(space, hyp, names, logp)
    return json_response(infer_out(engine, found))


def infer_out(engine: Engine, found: list[NamePosterior]) -> InferOut:
    """The answer to /infer (and to `namegen infer`) for these posteriors."""
    space = engine.checkpoint.labels
    assert space is not None
    return InferOut.model_validate(
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

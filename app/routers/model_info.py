from typing import Any

from fastapi import APIRouter

from app.deps import ServiceDep
from app.schemas import ERROR_RESPONSES, LabelColumnOut, LabelsOut, ModelOut
from app.security import API_KEY_SECURITY
from model.checkpoint import Checkpoint

router = APIRouter(tags=["model"])


def labels_out(checkpoint: Checkpoint) -> LabelsOut | None:
    space = checkpoint.labels
    if space is None:
        return None
    has_births = sum(space.births) > 0
    columns = [
        LabelColumnOut(
            name=c.name,
            values=list(c.values),
            ordinal=c.ordinal,
            prior_types=dict(zip(c.values, space.marginal(c.name, "types"), strict=True)),
            prior_births=(
                dict(zip(c.values, space.marginal(c.name, "births"), strict=True))
                if has_births
                else None
            ),
        )
        for c in space.columns
    ]
    return LabelsOut(
        columns=columns,
        prior=space.prior,
        temperature=space.temperature,
        calibrated="calibration" in checkpoint.meta,
    )


def backward_out(meta: dict[str, Any]) -> dict[str, Any] | None:
    second = meta.get("backward")
    if second is None:
        return None
    return {
        "fingerprint": second["file"]["sha256"],
        "num_params": second.get("num_params"),
        "config": second.get("model_config"),
        "metrics": second.get("metrics", {}),
        "training": second.get("training", {}),
    }


@router.get(
    "/model",
    response_model=ModelOut,
    summary="The loaded checkpoint",
    responses={401: ERROR_RESPONSES[401]},
    openapi_extra=API_KEY_SECURITY,
)
async def model_info(service: ServiceDep) -> ModelOut:
    engine = service.engine
    meta = engine.checkpoint.meta
    return ModelOut(
        fingerprint=engine.checkpoint.fingerprint,
        # its name only: the server's file system is none of the client's business
        checkpoint=engine.checkpoint.path.resolve().name,
        num_params=engine.model.num_params(),
        config=meta["model_config"],
        vocab=meta["vocab"],
        corpus=meta.get("corpus", {}),
        metrics=meta.get("metrics", {}),
        training=meta.get("training", {}),
        device=str(engine.device),
        directions=engine.checkpoint.directions,
        backward=backward_out(meta),
        labels=labels_out(engine.checkpoint),
    )

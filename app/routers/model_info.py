from fastapi import APIRouter

from app.deps import ServiceDep
from app.schemas import ERROR_RESPONSES, ModelOut
from app.security import API_KEY_SECURITY

router = APIRouter(tags=["model"])


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
        checkpoint=str(engine.checkpoint.path),
        num_params=engine.model.num_params(),
        config=meta["model_config"],
        vocab=meta["vocab"],
        corpus=meta.get("corpus", {}),
        metrics=meta.get("metrics", {}),
        training=meta.get("training", {}),
        device=str(engine.device),
    )

"""All routers, collected in one place."""

from fastapi import APIRouter, Depends

from app.routers import generate, health, metrics, model_info, score
from app.security import require_api_key

api_router = APIRouter()
for module in (generate, score, model_info):  # need a key when keys are configured
    api_router.include_router(module.router, dependencies=[Depends(require_api_key)])
for module in (health, metrics):  # probes and scrapers stay open
    api_router.include_router(module.router)

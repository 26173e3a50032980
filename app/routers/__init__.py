"""All routers, collected in one place."""

from fastapi import APIRouter

from app.routers import generate, health, metrics, model_info, score

api_router = APIRouter()
for module in (generate, score, health, model_info, metrics):
    api_router.include_router(module.router)

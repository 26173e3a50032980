"""All routers, collected in one place."""

from fastapi import FastAPI, Security

from app.routers import generate, health, metrics, model_info, score
from app.security import require_api_key


def include_routers(app: FastAPI) -> None:
    # Straight onto the app, not through an umbrella router: every level of nesting is
    # walked again on every request.
    for module in (generate, score, model_info):  # need a key when keys are configured
        app.include_router(module.router, dependencies=[Security(require_api_key)])
    for module in (health, metrics):  # probes and scrapers stay open
        app.include_router(module.router)

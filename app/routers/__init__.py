"""All routers, collected in one place."""

from fastapi import FastAPI

from app.routers import docs, generate, health, infer, metrics, model_info, page, score


def include_routers(app: FastAPI) -> None:
    # Straight onto the app, not through an umbrella router: every level of nesting is
    # walked again on every request. API keys are checked by ApiKeyMiddleware.
    for module in (generate, score, infer, model_info, health, metrics, docs, page):
        app.include_router(module.router)

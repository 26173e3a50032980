from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


# HEAD too (load balancers and uptime checks often probe with it), left out of the
# schema: it is the GET without a body.
@router.head("/health", include_in_schema=False)
@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.head("/ready", include_in_schema=False)
@router.get(
    "/ready",
    summary="The model is loaded and serving",
    responses={503: {"description": "still loading"}},
)
async def ready(request: Request) -> JSONResponse:
    if request.app.state.service is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ready"})

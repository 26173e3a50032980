"""The page at `/`: one HTML file, a stylesheet and a few ES modules from app/static,
served as they are (no build step). The page speaks the public API only, so anything it
does a script can do too; its Content-Security-Policy keeps everything on this origin."""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "static"
TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
# What the page may load: its own files and its own API, nothing from any other host.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Revalidated on every load (the ETag makes that a 304): a new release shows at once.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _files() -> dict[str, Path]:
    """The served files by name, listed once: no path from a request reaches the disk."""
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in TYPES}


FILES = _files()


def _response(name: str) -> FileResponse:
    path = FILES[name]
    headers = {**HEADERS, "Content-Security-Policy": CSP} if path.suffix == ".html" else HEADERS
    return FileResponse(path, media_type=TYPES[path.suffix], headers=headers)


@router.get("/")
async def page() -> FileResponse:
    return _response("index.html")


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404, f"no file {name!r}")
    return _response(name)

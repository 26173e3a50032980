"""The page's files as the server serves them, without a browser: small, nothing from
another host, and no way from /static to any other file."""

from __future__ import annotations

import re

import httpx

from app.local_server import LocalServer
from app.routers.page import STATIC

LIMIT = 200 * 1024
# Namespace names, which identify and are never fetched.
NAMESPACES = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s"'`)]*""", re.IGNORECASE)
ASSET = re.compile(r"""(?:src|href)="(static/[^"]+)\"""")
IMPORT = re.compile(r"""from '\./([\w.-]+\.js)'""")


def loaded_files(base: str) -> dict[str, bytes]:
    """The page and everything it loads: its links and scripts, and the modules they import."""
    page = httpx.get(base + "/")
    files = {"/": page.content}
    todo = ["/" + path for path in ASSET.findall(page.text)]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        resp = httpx.get(base + path)
        assert resp.status_code == 200, path
        files[path] = resp.content
        todo += [f"/static/{name}" for name in IMPORT.findall(resp.text)]
    return files


def test_the_page_and_its_assets_weigh_under_200_kb(shipped_server: LocalServer) -> None:
    files = loaded_files(shipped_server.base)
    assert {"/static/app.js", "/static/api.js", "/static/app.css"} <= set(files)
    total = sum(map(len, files.values()))
    assert total < LIMIT, {path: len(body) for path, body in files.items()}
    # and every file of app/static is one the page loads: nothing unused ships
    assert {p.name for p in STATIC.iterdir()} == {"index.html"} | {
        path.removeprefix("/static/") for path in files if path != "/"
    }


def test_nothing_refers_to_another_host(shipped_server: LocalServer) -> None:
    for path, body in loaded_files(shipped_server.base).items():
        urls = set(URL.findall(body.decode())) - NAMESPACES
        assert not urls, f"{path} refers to {urls}"


def test_the_page_forbids_other_origins_itself(shipped_server: LocalServer) -> None:
    resp = httpx.get(shipped_server.base + "/")
    assert resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp and "*" not in csp


def test_static_serves_only_its_own_files(shipped_server: LocalServer) -> None:
    base = shipped_server.base
    assert httpx.get(base + "/static/app.js").headers["content-type"].startswith("text/javascript")
    for path in ("/static/missing.js", "/static/..%2Fconfig.py", "/static/%2E%2E/cli.py"):
        assert httpx.get(base + path).status_code == 404, path

"""/docs and /redoc work with no network: the pages and every asset they name come from
the app itself."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

Client = httpx.Client | TestClient


class Assets(HTMLParser):
    """The URLs a page loads: script src and link href."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def assets_of(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js": "javascript", "swagger-ui.css": "text/css"}),
        ("/redoc", {"redoc.standalone.js": "javascript"}),
    ],
)
def test_docs_pages_load_everything_from_the_app(
    api: Client, page: str, expected: dict[str, str]
) -> None:
    r = api.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text
    urls = assets_of(r.text)
    assert urls, r.text
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
    for name, media in expected.items():  # the page's own script and stylesheet
        (url,) = [u for u in urls if u.endswith("/" + name)]
        asset = api.get(url)
        assert asset.status_code == 200 and media in asset.headers["content-type"]
        assert len(asset.content) > 100_000  # the real bundle, not a stub
    for url in urls:
        assert api.get(url).status_code == 200, url
    assert "cdn" not in r.text.lower() and "googleapis" not in r.text


def test_only_the_named_assets_are_served(api: Client) -> None:
    assert api.get("/docs/assets/core.py").status_code == 404
    assert api.get("/docs/assets/..%2F__init__.py").status_code == 404


def test_the_schema_behind_the_pages_shows_the_request_examples(api: Client) -> None:
    spec = api.get("/openapi.json").json()
    examples = spec["components"]["schemas"]["GenerateRequest"]["examples"]
    assert {"n": 5, "temperature": 0.8, "seed": 42} in examples
    assert "/docs" not in spec["paths"] and "/docs/assets/{name}" not in spec["paths"]

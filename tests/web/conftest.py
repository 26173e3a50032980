"""The page in a real browser: Playwright for Python driving Debian's Chromium (Playwright's
own browser download is not available here; .ci/run installs the `chromium` package).
Every test runs against the real server (app.local_server.LocalServer), and every page
fails its test on a console error it did not expect or on a request to any other origin."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.local_server import LocalServer
from tests.app.labelled import build_labelled_checkpoint

CHROMIUM = Path(os.environ.get("NAMEGEN_CHROMIUM", "/usr/bin/chromium"))
# As root in a container: no sandbox; and nothing in the background that would reach
# for Google's hosts through a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"


@pytest.fixture(scope="session")
def shipped_server() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture(scope="session")
def labelled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The tiny conditional checkpoint of tests/app/labelled.py: label selects, /infer."""
    checkpoint = build_labelled_checkpoint(tmp_path_factory.getbasetemp())
    with LocalServer({"NAMEGEN_CHECKPOINT": str(checkpoint)}) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Watched:
    """A page, with what it logged and requested."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect_console_error(self, pattern: str) -> None:
        """A console error this test provokes (a 4xx the page shows to the user)."""
        self.expected.append(re.compile(pattern))

    def goto(self, path: str = "/") -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready]")

    def check(self) -> None:
        foreign = [
            url
            for url in self.requests
            if not url.startswith((self.base + "/", f"blob:{self.base}/", "data:"))
        ]
        assert not foreign, f"requests to other origins: {foreign}"
        unexpected = [e for e in self.errors if not any(p.search(e) for p in self.expected)]
        assert not unexpected, f"console errors: {unexpected}"


def open_page(browser: Any, base: str, viewport: dict[str, int] = DESKTOP, **kw: Any) -> Watched:
    context = browser.new_context(viewport=viewport, accept_downloads=True, **kw)
    page = context.new_page()
    watched = Watched(page, base)
    page.on("request", lambda r: watched.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and watched.errors.append(m.text))
    page.on("pageerror", lambda e: watched.errors.append(f"page error: {e}"))
    return watched


@pytest.fixture
def shipped_page(browser: Any, shipped_server: LocalServer) -> Iterator[Watched]:
    watched = open_page(browser, shipped_server.base)
    yield watched
    watched.page.context.close()
    watched.check()


@pytest.fixture
def labelled_page(browser: Any, labelled_server: LocalServer) -> Iterator[Watched]:
    watched = open_page(browser, labelled_server.base)
    yield watched
    watched.page.context.close()
    watched.check()


def api(base: str, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    resp = httpx.post(base + path, json=body, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def shown_names(page: Any) -> list[str]:
    return [str(n) for n in page.locator("#result-list .name").all_inner_texts()]


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """docs/screenshots/ when NAMEGEN_SCREENSHOTS=1 (to refresh the committed ones), else a
    temporary folder: a test run leaves the working tree as it was."""
    folder = SCREENSHOTS if os.environ.get("NAMEGEN_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name

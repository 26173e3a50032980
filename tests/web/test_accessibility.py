"""axe-core (vendored, tests/web/vendor) on the page with names and analyses on it, at
desktop and phone widths: no serious or critical violation; at phone width nothing wider
than the screen. The same states are the screenshots under docs/screenshots/
(NAMEGEN_SCREENSHOTS=1 writes them there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.local_server import LocalServer
from tests.web.conftest import DESKTOP, PHONE, Watched, open_page, screenshot_path

expect = pytest.importorskip("playwright.sync_api").expect

AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def filled(watched: Watched, names: str, path: str = "/", **fields: str) -> Any:
    """The page (at `path`) with a result, a kept name and an analysis on it."""
    page = watched.page
    watched.goto(path)
    if "?" in path:  # the link's own result first
        expect(page.locator("#seed-used")).to_be_visible()
    for name, value in fields.items():
        page.fill(f"#f-{name}", value)
    with page.expect_response(lambda r: r.url.endswith("/generate")):
        page.click("#generate-form button[type=submit]")
    page.locator("#result-list .star").nth(1).click()
    page.fill("#f-names", names)
    page.click("#analyse-form button[type=submit]")
    expect(page.locator("#analysis .analysis")).to_have_count(len(names.split()))
    return page


def serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_serious_accessibility_violations(
    browser: Any, labelled_server: LocalServer, viewport: dict[str, int], tmp_path: Path
) -> None:
    # axe is injected as a script of the test's own: the page's policy would refuse it
    watched = open_page(browser, labelled_server.base, viewport, bypass_csp=True)
    try:
        page = filled(watched, "bunila\nsirero", n="6", seed="1")
        assert serious_violations(page) == []
        if viewport == PHONE:  # readable at phone width: no sideways scrolling
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"]
    finally:
        watched.page.context.close()
    watched.check()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_screenshots(
    browser: Any, shipped_server: LocalServer, viewport: dict[str, int], tmp_path: Path
) -> None:
    watched = open_page(browser, shipped_server.base, viewport)
    try:
        page = filled(watched, "emma\nzyxwv", n="8", prefix="ma", seed="42")
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        name = "page-desktop.png" if viewport == DESKTOP else "page-phone.png"
        path = screenshot_path(name, tmp_path)
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
    finally:
        watched.page.context.close()
    watched.check()


def test_axe_finds_what_it_should(browser: Any, shipped_server: LocalServer) -> None:
    """The check above can fail: an input without a label, a serious violation, is found."""
    watched = open_page(browser, shipped_server.base, bypass_csp=True)
    try:
        watched.goto()
        watched.page.evaluate("document.querySelector('label[for=f-prefix]').remove()")
        assert any(v.startswith("label ") for v in serious_violations(watched.page))
    finally:
        watched.page.context.close()
    watched.check()


def test_screenshot_with_labels(browser: Any, labelled_server: LocalServer, tmp_path: Path) -> None:
    """The label controls, P(sex) bar and P(decade) chart, on the tests' tiny synthetic
    checkpoint (its names are made up: girls' end in 'a', boys' in 'o')."""
    watched = open_page(browser, labelled_server.base)
    try:
        page = filled(watched, "bunila\nsirero", "/?labels.sex=F", n="6", seed="3")
        path = screenshot_path("page-labels-desktop.png", tmp_path)
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
    finally:
        watched.page.context.close()
    watched.check()

"""The page at `/` on the shipped checkpoint, in Chromium: generate with controls, a link
that repeats a result, the shortlist across a reload and its CSV, errors beside their
fields, the API key prompt, and the keyboard alone."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import httpx
import pytest

from app.local_server import LocalServer
from tests.web.conftest import Watched, api, open_page, shown_names

expect = pytest.importorskip("playwright.sync_api").expect

# the page's controls, each shown exactly when /generate takes its field
CONTROLS = (
    "n", "prefix", "ends_with", "contains", "min_length", "max_length", "temperature",
    "guidance", "exclude_existing", "unique", "seed", "top_k", "top_p",
)  # fmt: skip


def submit(page: Any) -> None:
    page.click("#generate-form button[type=submit]")


def generated(page: Any) -> dict[str, Any]:
    """Submit the form; the API's answer the page received."""
    with page.expect_response(lambda r: r.url.endswith("/generate")) as info:
        submit(page)
    body: dict[str, Any] = info.value.json()
    expect(page.locator("#seed-used")).to_have_text(str(body["seed"]))
    return body


def test_generated_names_obey_the_controls(shipped_page: Watched) -> None:
    page = shipped_page.page
    shipped_page.goto()
    page.fill("#f-n", "8")
    page.fill("#f-prefix", "Ma")
    page.fill("#f-min_length", "4")
    page.fill("#f-max_length", "7")
    page.check("#f-unique")
    page.check("#f-exclude_existing")
    page.fill("#f-temperature", "0.8")
    expect(page.locator("#o-temperature")).to_have_text("0.80")
    out = generated(page)
    names = shown_names(page)
    assert len(names) == 8 and len(set(names)) == 8
    for name in names:
        assert name.startswith("ma") and 4 <= len(name) <= 7, name
    assert page.locator("#result-list .badge.new").count() == 8  # only new names
    # the same request to the API gives the same names, and the bars show their figures
    body = {
        "n": 8, "prefix": "Ma", "min_length": 4, "max_length": 7, "unique": True,
        "exclude_existing": True, "temperature": 0.8, "seed": out["seed"],
    }  # fmt: skip
    again = api(shipped_page.base, "/generate", body)["names"]
    assert names == [g["name"] for g in again]
    meters = page.locator("#result-list meter")
    for i, g in enumerate(again):
        shown = float(meters.nth(i).get_attribute("value"))
        assert math.isclose(shown, g["logprob"] / (len(g["name"]) + 1), rel_tol=1e-6)


def test_names_for_labels_with_their_guidance(shipped_page: Watched) -> None:
    page = shipped_page.page
    shipped_page.goto()
    page.fill("#f-n", "5")
    page.select_option("#f-labels-sex", "F")
    page.select_option("#f-labels-decade", "1920")
    page.fill("#f-guidance", "2.5")
    expect(page.locator("#o-guidance")).to_have_text("2.5")
    with page.expect_request(lambda r: r.url.endswith("/generate")) as sent:
        out = generated(page)
    body = sent.value.post_data_json
    assert body["labels"] == {"sex": "F", "decade": "1920"} and body["guidance"] == 2.5
    again = api(shipped_page.base, "/generate", {**body, "seed": out["seed"]})["names"]
    assert shown_names(page) == [g["name"] for g in again]


def test_a_link_repeats_the_result(shipped_page: Watched, browser: Any) -> None:
    page = shipped_page.page
    shipped_page.goto()
    page.fill("#f-n", "6")
    page.fill("#f-prefix", "j")
    page.fill("#f-max_length", "6")
    out = generated(page)
    names = shown_names(page)
    link = page.locator("#result-link").get_attribute("href")
    assert f"seed={out['seed']}" in link and "prefix=j" in link
    assert page.url.endswith(link)  # the address bar holds it too
    other = open_page(browser, shipped_page.base)
    try:
        other.goto(link)
        expect(other.page.locator("#seed-used")).to_have_text(str(out["seed"]))
        assert shown_names(other.page) == names
        assert other.page.input_value("#f-prefix") == "j"
        assert other.page.input_value("#f-max_length") == "6"
    finally:
        other.page.context.close()
        other.check()


def read_download(page: Any, button: str) -> list[dict[str, str]]:
    with page.expect_download() as info:
        page.click(button)
    path = info.value.path()
    with open(path, newline="") as f:
        return list(csv.DictReader(io.StringIO(f.read())))


def test_kept_names_survive_a_reload_and_download_as_csv(shipped_page: Watched) -> None:
    page = shipped_page.page
    shipped_page.goto()
    page.fill("#f-n", "5")
    page.fill("#f-seed", "7")
    out = generated(page)
    rows = read_download(page, "#download-results")
    assert [r["name"] for r in rows] == [g["name"] for g in out["names"]]
    for row, g in zip(rows, out["names"], strict=True):
        assert float(row["logprob"]) == g["logprob"]
        assert row["in_corpus"] == str(g["in_corpus"]).lower()
    kept = [out["names"][0], out["names"][2]]
    for g in kept:
        page.click(f'#result-list li[data-name="{g["name"]}"] .star')
    page.reload()
    page.wait_for_selector("body[data-ready]")
    shortlist = page.locator("#shortlist .name").all_inner_texts()
    assert shortlist == [g["name"] for g in kept]
    rows = read_download(page, "#download-shortlist")
    assert [(r["name"], float(r["logprob"])) for r in rows] == [
        (g["name"], g["logprob"]) for g in kept
    ]
    page.click(f'#shortlist li[data-name="{kept[0]["name"]}"] .remove')
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert page.locator("#shortlist .name").all_inner_texts() == [kept[1]["name"]]


def test_an_api_error_shows_beside_its_field(shipped_page: Watched) -> None:
    shipped_page.expect_console_error("status of 422")
    page = shipped_page.page
    shipped_page.goto()
    page.fill("#f-min_length", "9")
    page.fill("#f-max_length", "3")
    submit(page)
    body = {"min_length": 9, "max_length": 3}
    resp = httpx.post(shipped_page.base + "/generate", json={"n": 10, **body})
    assert resp.status_code == 422
    [detail] = resp.json()["error"]["details"]
    assert detail["field"] == "min_length"
    error = page.locator('.field[data-field="min_length"] .error')
    expect(error).to_have_text(detail["message"])
    expect(page.locator("#f-min_length")).to_have_attribute("aria-invalid", "true")
    assert "err-min_length" in page.get_attribute("#f-min_length", "aria-describedby")
    # the next answer clears it; a field past the server's limit is named in turn
    page.fill("#f-min_length", "")
    page.fill("#f-n", "20000")
    submit(page)
    expect(page.locator('.field[data-field="n"] .error')).to_contain_text("10000")
    expect(error).to_have_count(0)
    # a name the model cannot take, in the analysis form
    page.fill("#f-names", "emma\nem1ma")
    page.click("#analyse-form button[type=submit]")
    expect(page.locator('.field[data-field="names"] .error')).to_contain_text("'1'")


def test_controls_are_what_the_api_offers(shipped_page: Watched) -> None:
    page = shipped_page.page
    shipped_page.goto()
    schema = httpx.get(shipped_page.base + "/openapi.json").json()
    fields = schema["components"]["schemas"]["GenerateRequest"]["properties"]
    for control in CONTROLS:
        assert page.locator(f"#f-{control}").count() == (control in fields), control
    columns = httpx.get(shipped_page.base + "/model").json()["labels"]["columns"]
    assert page.locator("select").count() == len(columns) == 2  # sex and decade
    assert page.locator("#infer-link").is_visible()


def test_the_page_asks_for_an_api_key(browser: Any) -> None:
    with LocalServer({"NAMEGEN_API_KEYS": "sesame"}) as server:
        watched = open_page(browser, server.base)
        watched.expect_console_error("status of 401")
        page = watched.page
        sent: dict[str, str | None] = {}  # the key each API path was last sent with
        page.on("request", lambda r: sent.update({r.url: r.headers.get("x-api-key")}))
        try:
            page.goto(server.base + "/")
            dialog = page.locator("#key-dialog")
            expect(dialog).to_be_visible()
            page.fill("#f-key", "wrong")
            page.click("#key-form button[type=submit]")
            expect(page.locator("#key-message")).to_contain_text("invalid API key")
            expect(dialog).to_be_visible()
            page.fill("#f-key", "sesame")
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("body[data-ready]")
            expect(dialog).to_be_hidden()
            page.fill("#f-seed", "3")
            generated(page)
            assert len(shown_names(page)) == 10
            assert page.evaluate("sessionStorage.getItem('namegen.apiKey')") == "sesame"
            assert page.evaluate("localStorage.getItem('namegen.apiKey')") is None
            assert sent[server.base + "/generate"] == "sesame", sent
        finally:
            page.context.close()
        watched.check()


def test_the_keyboard_alone_generates_and_keeps(shipped_page: Watched) -> None:
    page = shipped_page.page
    shipped_page.goto()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")  # past the skip link, into the first field
    assert page.evaluate("document.activeElement.id") == "f-n"
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    with page.expect_response(lambda r: r.url.endswith("/generate")):
        page.keyboard.press("Enter")  # submits the form
    expect(page.locator("#result-list li")).to_have_count(3)
    for _ in range(60):  # Tab on to the first star
        page.keyboard.press("Tab")
        if "star" in page.evaluate("document.activeElement.className"):
            break
    first = shown_names(page)[0]
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == f"Keep {first}"
    page.keyboard.press("Space")
    expect(page.locator("#shortlist .name")).to_have_text([first])


def test_a_seed_past_two_to_the_53_is_kept_exactly(shipped_page: Watched) -> None:
    page = shipped_page.page
    shipped_page.goto()
    seed = 2**63 - 1  # as a JavaScript number it would round to 2^63, which the API refuses
    page.fill("#f-n", "4")
    page.fill("#f-seed", str(seed))
    generated(page)
    assert page.inner_text("#seed-used") == str(seed) and f"seed={seed}" in page.url
    expected = api(shipped_page.base, "/generate", {"n": 4, "seed": seed})["names"]
    assert shown_names(page) == [g["name"] for g in expected]


def test_the_watch_catches_console_errors_and_other_origins(
    browser: Any, shipped_server: LocalServer
) -> None:
    """What every page test relies on can fail. With the page's policy the browser itself
    refuses a foreign request and says so on the console; without it, the request goes
    out and the watch sees it."""
    fetch = "fetch('http://example.invalid/x').catch(() => null)"
    for bypass_csp, said in ((False, "console errors"), (True, "requests to other origins")):
        watched = open_page(browser, shipped_server.base, bypass_csp=bypass_csp)
        try:
            watched.goto()
            watched.page.evaluate(fetch)
            watched.page.wait_for_timeout(300)
        finally:
            watched.page.context.close()
        if not bypass_csp:
            assert any("Content Security Policy" in e for e in watched.errors)
        with pytest.raises(AssertionError, match=said):
            watched.check()

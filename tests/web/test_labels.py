"""The page on a conditional checkpoint (tests/app/labelled.py's tiny one: girls' names
end in 'a', boys' in 'o'): a select per label column, names generated under labels, and
the analysis of a name showing the API's own figures, character by character, and its
label posteriors as bars and a chart."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.web.conftest import Watched, api, shown_names

expect = pytest.importorskip("playwright.sync_api").expect


def close(shown: str | None, value: float) -> bool:
    return shown is not None and math.isclose(float(shown), value, rel_tol=1e-9, abs_tol=1e-12)


def test_label_selects_come_from_the_model(labelled_page: Watched) -> None:
    page = labelled_page.page
    labelled_page.goto()
    model = httpx.get(labelled_page.base + "/model").json()
    for column in model["labels"]["columns"]:
        select = page.locator(f'select[name="labels.{column["name"]}"]')
        options = select.locator("option")
        assert options.first.inner_text() == "any"
        assert [options.nth(i).get_attribute("value") for i in range(1, options.count())] == (
            column["values"]
        )
        assert page.locator(f'label[for="f-labels-{column["name"]}"]').count() == 1


def test_names_generated_under_a_label(labelled_page: Watched) -> None:
    page = labelled_page.page
    labelled_page.goto()
    page.select_option('select[name="labels.sex"]', "F")
    page.fill("#f-n", "12")
    page.fill("#f-seed", "5")
    with page.expect_response(lambda r: r.url.endswith("/generate")):
        page.click("#generate-form button[type=submit]")
    expect(page.locator("#seed-used")).to_have_text("5")
    body = {"n": 12, "seed": 5, "labels": {"sex": "F"}}
    expected = [g["name"] for g in api(labelled_page.base, "/generate", body)["names"]]
    assert shown_names(page) == expected
    assert "labels.sex=F" in page.url
    # girls' names of this corpus end in 'a': the label took
    assert sum(name.endswith("a") for name in expected) >= 9


def test_the_analysis_shows_the_api_figures(labelled_page: Watched) -> None:
    page = labelled_page.page
    labelled_page.goto()
    names = ["bunila", "sirero"]
    page.fill("#f-names", "\n".join(names) + "\n\n")
    page.click("#analyse-form button[type=submit]")
    expect(page.locator("#analysis .analysis")).to_have_count(2)
    scores = api(labelled_page.base, "/score", {"names": names})["scores"]
    inferred = api(labelled_page.base, "/infer", {"names": names})["results"]
    model = httpx.get(labelled_page.base + "/model").json()
    ordinal = {c["name"]: c["ordinal"] for c in model["labels"]["columns"]}
    for score, inf in zip(scores, inferred, strict=True):
        card = page.locator(f'#analysis .analysis[data-name="{score["name"]}"]')
        # each character, coloured by its probability
        chars = card.locator(".ch")
        assert chars.count() == len(score["char_probs"])
        for i, cp in enumerate(score["char_probs"]):
            assert chars.nth(i).get_attribute("data-char") == cp["char"]
            assert close(chars.nth(i).get_attribute("data-prob"), cp["prob"])
        assert close(card.locator("meter").get_attribute("value"), score["logprob_per_char"])
        assert card.locator(".badge").inner_text() == ("in corpus" if score["in_corpus"] else "new")
        for column, posterior in inf["labels"].items():
            if ordinal[column]:  # a bar chart: one bar per value, heights by probability
                heights = []
                for value, p in posterior["probs"].items():
                    bar = card.locator(f'svg[data-column="{column}"] rect[data-value="{value}"]')
                    assert close(bar.get_attribute("data-prob"), p)
                    heights.append(float(bar.get_attribute("height")))
                best = max(posterior["probs"], key=posterior["probs"].get)
                assert best == posterior["best"]
                top = card.locator(f'svg[data-column="{column}"] rect.best')
                assert top.get_attribute("data-value") == best
                assert max(heights) == float(top.get_attribute("height"))
                caption = card.locator("figcaption")
                expect(caption).to_contain_text(f"most likely {posterior['best']}")
                if posterior["expected_year"] is not None:
                    expect(caption).to_contain_text(str(round(posterior["expected_year"])))
            else:  # one bar split by value, each part as wide as its probability
                bar = card.locator(f'.stack[data-column="{column}"]')
                width = bar.bounding_box()["width"]
                for value, p in posterior["probs"].items():
                    part = bar.locator(f'.seg[data-value="{value}"]')
                    assert close(part.get_attribute("data-prob"), p)
                    assert abs(part.bounding_box()["width"] - p * width) <= 2

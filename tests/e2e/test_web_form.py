"""The reference questionnaire in real headless Chromium (Debian's), with JavaScript off and on: it works,
follows the State design system (DSFR) and has no WCAG 2.x A/AA violation that axe-core finds."""

from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from shared.web import DSFR_URL
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import axe_violations, new_page, poll, rankings, tick

DSFR_CSS = f"{DSFR_URL}/dsfr.min.css"


async def ranking_of(pipeline: Pipeline, cid: str, kind: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as client:
        return list((await rankings(client, pipeline, cid, kind))["items"])


async def settled(pipeline: Pipeline, cid: str, kind: str, expected: list[tuple[str, int]]) -> None:
    async def equal() -> bool:
        return [(i["key"], i["score"]) for i in await ranking_of(pipeline, cid, kind)] == expected

    await poll(f"the {kind} ranking to show {expected}", equal, deadline_s=10)


@pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
async def test_a_respondent_answers_in_french_and_the_response_is_ranked(
    pipeline: Pipeline, browser: Browser, javascript: bool
) -> None:
    cid = pipeline.open_consultation(seconds=600)
    organs = next(d for d in pipeline.datasets("not_open") if "orgues" in d["title"])
    reliures = "53698f51a3a729239d2036fb"
    page = await new_page(browser, javascript)
    await page.goto(f"{pipeline.url('ingest')}/consultations/{cid}")
    assert await page.get_attribute("html", "lang") == "fr"
    assert "Données à ouvrir" in await page.inner_text("main")
    assert await page.locator(".dataset-row").count() == len(pipeline.datasets("not_open"))
    if javascript:
        # The searchable picker: the list narrows to what is typed, accents ignored.
        await page.fill("#open-search", "orgues")
        visible = page.locator(".dataset-row:visible")
        assert await visible.count() == 1
        await page.fill("#improve-0-dataset-search", "reliures numerisees")
    else:
        assert await page.locator("#open-search").count() == 0
    await page.select_option("#profile", "journalist")
    await page.select_option("#departement", "33")
    await tick(page, f"open-{organs['dataset_id']}-essential")
    await page.select_option("#improve-0-dataset", reliures)
    await tick(page, "improve-0-kind-3")  # API access
    await page.fill("#suggestion-0-title", "Registre des fanfares")
    await tick(page, "satisfaction-4")
    await tick(page, "consent")
    await page.click("#submit")
    await page.wait_for_selector("#confirmation")
    assert "Merci, votre réponse est enregistrée" in await page.inner_text("#confirmation")
    assert len(await page.inner_text("#respondent-token")) >= 16

    await settled(pipeline, cid, "open", [(organs["dataset_id"], 3)])
    improve = await ranking_of(pipeline, cid, "improve")
    assert [(i["key"], i["by_improvement"]) for i in improve] == [(reliures, {"api_access": 1})]
    assert improve[0]["by_profile"] == {"journalist": {"score": 1, "respondents": 1}}
    await page.context.close()


async def test_a_respondent_comes_back_with_their_link_and_amends(pipeline: Pipeline, browser: Browser) -> None:
    cid = pipeline.open_consultation(seconds=600)
    first, second = pipeline.datasets("not_open")[:2]
    page = await new_page(browser, javascript=False)
    await page.goto(f"{pipeline.url('ingest')}/consultations/{cid}")
    await page.select_option("#profile", "researcher")
    await tick(page, f"open-{first['dataset_id']}-essential")
    await page.fill("#suggestion-0-title", "Registre des fanfares")
    await tick(page, "consent")
    await page.click("#submit")
    amend = await page.get_attribute("#amend-link", "href")
    assert amend is not None
    await settled(pipeline, cid, "open", [(first["dataset_id"], 3)])

    await page.goto(amend)
    # The form comes back filled with the previous response.
    assert await page.is_checked(f"#open-{first['dataset_id']}-essential")
    assert await page.input_value("#suggestion-0-title") == "Registre des fanfares"
    assert await page.input_value("#profile") == "researcher"
    await tick(page, f"open-{first['dataset_id']}-none")
    await tick(page, f"open-{second['dataset_id']}-useful")
    await page.fill("#suggestion-0-title", "")
    await tick(page, "consent")
    await page.click("#submit")
    await page.wait_for_selector("#confirmation")
    await settled(pipeline, cid, "open", [(second["dataset_id"], 1)])
    await settled(pipeline, cid, "suggestions", [])
    await page.context.close()


@pytest.mark.parametrize("javascript", [False, True], ids=["js-off", "js-on"])
async def test_errors_are_summarised_and_linked_to_their_fields(
    pipeline: Pipeline, browser: Browser, javascript: bool
) -> None:
    cid = pipeline.open_consultation(seconds=600)
    page = await new_page(browser, javascript)
    await page.goto(f"{pipeline.url('ingest')}/consultations/{cid}")
    await page.fill("#suggestion-0-title", "Registre des fanfares")
    async with page.expect_navigation() as navigation:
        await page.click("#submit")
    response = await navigation.value
    assert response is not None
    assert response.status == 422
    summary = page.locator("#error-summary")
    assert await summary.get_attribute("role") == "alert"
    targets = await summary.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert set(targets) == {"#profile", "#consent"}
    assert await page.get_attribute("#profile", "aria-invalid") == "true"
    assert await page.input_value("#suggestion-0-title") == "Registre des fanfares"
    if javascript:
        assert await page.evaluate("document.activeElement.id") == "error-summary"
    await page.click("a[href='#consent']")
    await tick(page, "consent")
    await page.select_option("#profile", "student")
    await page.click("#submit")
    await page.wait_for_selector("#confirmation")
    await page.context.close()


async def design_system_and_accessibility(page: Page) -> dict[str, Any]:
    """What one page shows of the State design system, and what axe-core finds wrong with it."""
    stylesheet = await page.evaluate(
        "path => [...document.styleSheets].some(s => s.href === new URL(path, location.href).href"
        " && s.cssRules.length > 0)",
        DSFR_CSS,
    )
    css = await page.request.get(DSFR_CSS)
    return {
        "dsfr.min.css": (stylesheet, css.status),
        "header": await page.locator("header.fr-header").count(),
        "footer": await page.locator("footer.fr-footer").count(),
        "font": "Marianne" in await page.evaluate("getComputedStyle(document.body).fontFamily"),
        "axe": await axe_violations(page),
    }


async def test_every_public_page_follows_the_design_system_without_accessibility_violations(
    pipeline: Pipeline, browser: Browser
) -> None:
    pages = [
        "open consultations",
        "empty questionnaire",
        "refused submission",
        "confirmation",
        "amend",
        "unknown consultation",
    ]
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    page = await new_page(browser, javascript=True, bypass_csp=True, base_url=pipeline.url("ingest"))
    found: dict[str, dict[str, Any]] = {}
    statuses: dict[str, int] = {}

    async def visit(name: str, url: str) -> None:
        answer = await page.goto(url)
        assert answer is not None
        statuses[name] = answer.status
        found[name] = await design_system_and_accessibility(page)

    async def submit(name: str) -> None:
        async with page.expect_navigation() as navigation:
            await page.click("#submit")
        answer = await navigation.value
        assert answer is not None
        statuses[name] = answer.status
        found[name] = await design_system_and_accessibility(page)

    await visit("open consultations", "/")
    await visit("empty questionnaire", f"/consultations/{cid}")
    await tick(page, f"open-{dataset}-essential")
    await page.fill("#suggestion-0-title", "Registre des fanfares")
    await submit("refused submission")
    assert await page.locator("#error-summary").count() == 1
    await page.select_option("#profile", "researcher")
    await tick(page, "consent")
    await submit("confirmation")
    amend = await page.get_attribute("#amend-link", "href")
    assert amend is not None
    await visit("amend", amend)
    assert await page.is_checked(f"#open-{dataset}-essential")
    await visit("unknown consultation", "/consultations/no-such-consultation")
    await page.context.close()

    assert statuses == {
        "open consultations": 200,
        "empty questionnaire": 200,
        "refused submission": 422,
        "confirmation": 200,
        "amend": 200,
        "unknown consultation": 404,
    }
    expected = {"dsfr.min.css": (True, 200), "header": 1, "footer": 1, "font": True, "axe": []}
    assert found == dict.fromkeys(pages, expected)

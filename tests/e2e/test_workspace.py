"""The staff workspace in real headless Chromium, with the services as processes: sign in, run a
consultation, watch its priorities move live, read what respondents wrote, close it, sign out; and the
guards around it (wrong passwords, throttling, CSRF, pages without a session, accessibility)."""

import asyncio
import time
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from deploy.local.processes import service_env
from tests.e2e.conftest import STAFF_NAME, STAFF_PASSWORD, Pipeline
from tests.e2e.helpers import CONSENT, axe_violations, new_page, poll, rankings, shot, tick

MARKER = "Zorglubophone"  # a word no catalogue, title or page contains, written only in free text


async def sign_in(page: Page, pipeline: Pipeline, password: str = STAFF_PASSWORD, name: str = STAFF_NAME) -> int:
    await page.goto(f"{pipeline.url('backoffice')}/connexion")
    await page.fill("#username", name)
    await page.fill("#password", password)
    async with page.expect_navigation() as navigation:
        await page.click("#sign-in")
    response = await navigation.value
    assert response is not None
    return response.status


async def staff_page(browser: Browser, pipeline: Pipeline) -> Page:
    page = await new_page(browser, javascript=True, bypass_csp=True, viewport={"width": 1280, "height": 900})
    assert await sign_in(page, pipeline) == 200
    assert page.url.endswith("/consultations")
    return page


async def accessible(page: Page, pages_checked: list[str]) -> None:
    assert await axe_violations(page) == [], page.url
    assert await page.locator(".fr-header").count() == 1
    pages_checked.append(page.url)


async def test_staff_run_a_consultation_and_see_it_live(pipeline: Pipeline, browser: Browser) -> None:
    checked: list[str] = []
    staff = await staff_page(browser, pipeline)
    await accessible(staff, checked)
    workspace = pipeline.url("backoffice")

    # Create a consultation through the form (a bad window first: explained, nothing created).
    cid = f"ws-{int(time.time() * 1000) % 10**9}"
    await staff.click("#new-consultation")
    await staff.fill("#consultation_id", cid)
    await staff.fill("#title", "Consultation des réutilisateurs (essai)")
    await staff.fill("#description", "Quelles données ouvrir en priorité ?")
    opens = await staff.input_value("#opens_at")
    await staff.fill("#closes_at", opens)
    await staff.click("#save")
    assert await staff.locator("#form-errors").count() == 1
    await accessible(staff, checked)
    await staff.fill("#opens_at", "2026-01-01T00:00")
    await staff.fill("#closes_at", "2099-01-01T00:00")
    await staff.click("#save")
    await staff.wait_for_url("**/consultations?notice=saved")
    assert await staff.get_attribute(f"#consultation-{cid} .status", "data-status") == "open"
    await shot(staff, "espace-consultations")
    await accessible(staff, checked)

    # The live page is open before anyone answers.
    await staff.click(f"#consultation-{cid} a[href='/consultations/{cid}']")
    await expect(staff.locator("#ranking-improve-empty")).to_be_visible()
    await expect(staff.locator("#live")).to_have_attribute("data-updates", "1")  # the stream is connected
    await accessible(staff, checked)

    # A respondent answers through the public form, with JavaScript off.
    reliures = "53698f51a3a729239d2036fb"
    respondent = await new_page(browser, javascript=False)
    await respondent.goto(f"{pipeline.url('ingest')}/consultations/{cid}")
    assert "Quelles données ouvrir en priorité ?" in await respondent.inner_text("main")
    await respondent.select_option("#profile", "journalist")
    await respondent.select_option("#improve-0-dataset", reliures)
    await tick(respondent, "improve-0-kind-1")  # export format
    await respondent.fill("#improve-0-comment", f"Un export CSV des données {MARKER}, mis à jour chaque mois.")
    await tick(respondent, "satisfaction-4")
    await respondent.fill("#platform-comment", "La recherche est lente.")
    await tick(respondent, "consent")
    await respondent.click("#submit")
    await respondent.wait_for_selector("#confirmation")

    # Counted by scoring, then shown on the staff page without a reload within 2 s.
    async with httpx.AsyncClient(timeout=10) as client:

        async def counted() -> bool:
            return bool((await rankings(client, pipeline, cid, "improve"))["items"])

        await poll("the response counted", counted, deadline_s=20, interval_s=0.05)
    counted_at = time.monotonic()
    row = staff.locator(f"#ranking-improve tr[data-key='{reliures}']")
    await expect(row).to_be_visible(timeout=2000)
    shown_after = time.monotonic() - counted_at
    assert shown_after < 2.0, shown_after
    assert await row.locator(".respondents").inner_text() == "1"
    # The participation is the workspace's own count, from its consumer: it may follow a little later.
    await expect(staff.locator("#respondents-total")).to_contain_text("1", timeout=20000)
    await shot(staff, "espace-priorites")

    # What respondents wrote: found by a word typed without its accent, with kinds, profile and day.
    await staff.goto(f"{workspace}/consultations/{cid}/contributions/ameliorations")
    await staff.fill("#q", "donnees zorglubophone")
    await staff.click("#search-submit")
    texts = staff.locator("li.text")
    await expect(texts).to_have_count(1)
    text = await texts.text_content() or ""
    assert MARKER in text
    assert "Format d'export" in text
    assert "Journaliste" in text
    await accessible(staff, checked)
    await shot(staff, "espace-contributions")
    export = await staff.request.get(f"{workspace}/consultations/{cid}/contributions/ameliorations.csv?q=zorglubophone")
    assert export.status == 200
    assert MARKER in await export.text()
    await staff.fill("#q", "introuvable")
    await staff.click("#search-submit")
    await expect(texts).to_have_count(0)
    await staff.goto(f"{workspace}/consultations/{cid}/contributions/suggestions")
    await accessible(staff, checked)
    await staff.goto(f"{workspace}/consultations/{cid}/contributions/plateforme")
    assert await staff.locator("#satisfaction tr[data-level='4'] .count").inner_text() == "1"
    assert "La recherche est lente." in await staff.inner_text("main")
    await accessible(staff, checked)

    # Edit, then close with a confirmation step.
    await staff.goto(f"{workspace}/consultations/{cid}/modifier")
    await accessible(staff, checked)
    await staff.goto(f"{workspace}/consultations/{cid}/cloture")
    await accessible(staff, checked)
    await staff.click("#confirm-close")
    await staff.wait_for_url("**/consultations?notice=closed")
    assert await staff.get_attribute(f"#consultation-{cid} .status", "data-status") in ("closed", "results")
    closed = await respondent.goto(f"{pipeline.url('ingest')}/consultations/{cid}")
    assert closed is not None
    assert closed.status == 409

    # The audit log says who did what.
    await staff.goto(f"{workspace}/journal")
    actions = await staff.locator("#journal tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-action') + ' ' + r.cells[3].textContent)"
    )
    assert f"consultation.create {cid}" in actions
    assert f"consultation.close {cid}" in actions
    await accessible(staff, checked)
    await shot(staff, "espace-journal")
    await staff.goto(f"{workspace}/consultations/inconnue")
    await accessible(staff, checked)

    # Sign out: the session is gone.
    await staff.goto(f"{workspace}/consultations")
    await staff.click("#sign-out")
    await staff.wait_for_url("**/connexion")
    await accessible(staff, checked)
    await staff.goto(f"{workspace}/consultations")
    assert "/connexion?suite=" in staff.url
    assert len(checked) == 12  # list twice, form with errors, live, 3 text views, edit, close, log, 404, sign-in
    await staff.context.close()
    await respondent.context.close()


async def staff_command(pipeline: Pipeline, *arguments: str, stdin: bytes = b"") -> tuple[int, str]:
    """`python -m services.backoffice.staff …` against the test store, as an operator runs it."""
    env = service_env(pipeline.infra, 0) | {"COD_ENVIRONMENT": "test", "COD_MONGO_DATABASE": "cod_backoffice"}
    command = await asyncio.create_subprocess_exec(
        "python", "-m", "services.backoffice.staff", *arguments,
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await command.communicate(stdin)
    return command.returncode or 0, out.decode()


async def test_staff_accounts_are_managed_from_the_command_line(pipeline: Pipeline, browser: Browser) -> None:
    assert (await staff_command(pipeline, "add", "cli-agent", "--password-stdin", stdin=b"short\n"))[0] == 2
    assert (await staff_command(pipeline, "add", "cli-agent", "--password-stdin", stdin=b"long-enough-pass\n"))[0] == 0
    assert (await staff_command(pipeline, "add", "cli-agent", "--password-stdin", stdin=b"long-enough-pass\n"))[0] == 1
    code, listed = await staff_command(pipeline, "list")
    assert code == 0
    assert "cli-agent\tactive" in listed
    page = await new_page(browser, javascript=False)
    assert await sign_in(page, pipeline, "long-enough-pass", "cli-agent") == 200
    # The workspace speaks English on request, and remembers it.
    await page.click("a[hreflang='en']")
    assert await page.get_attribute("html", "lang") == "en"
    assert "Sign out" in await page.inner_text("#sign-out")
    await page.click("a[hreflang='fr']")
    assert await page.get_attribute("html", "lang") == "fr"
    assert (await staff_command(pipeline, "disable", "cli-agent"))[0] == 0
    await page.goto(f"{pipeline.url('backoffice')}/consultations")
    assert "/connexion" in page.url  # disabling an account ends its sessions
    assert await sign_in(page, pipeline, "long-enough-pass", "cli-agent") == 401
    assert "cli-agent\tdisabled" in (await staff_command(pipeline, "list"))[1]
    await page.context.close()


async def test_wrong_passwords_are_refused_then_throttled(pipeline: Pipeline, browser: Browser) -> None:
    name = "throttled-agent"
    assert (await staff_command(pipeline, "add", name, "--password-stdin", stdin=b"a-long-enough-password\n"))[0] == 0
    page = await new_page(browser, javascript=False)
    statuses = [await sign_in(page, pipeline, "wrong-password", name) for _ in range(5)]
    assert statuses == [401] * 5
    assert "Identifiant ou mot de passe incorrect" in await page.inner_text("#signin-error")
    assert await sign_in(page, pipeline, "a-long-enough-password", name) == 429
    assert "Trop de tentatives" in await page.inner_text("#signin-error")
    await page.context.close()


async def test_state_changes_need_their_csrf_token(pipeline: Pipeline, browser: Browser) -> None:
    staff = await staff_page(browser, pipeline)
    workspace = pipeline.url("backoffice")
    definition: dict[str, str | float | bool] = {"consultation_id": "forged", "title": "Forged"}
    forged = await staff.request.post(f"{workspace}/consultations/nouvelle", form=definition)
    assert forged.status == 403
    assert (await staff.request.post(f"{workspace}/deconnexion", form={"csrf_token": "wrong"})).status == 403
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(f"{workspace}/connexion", data={"username": STAFF_NAME})).status_code == 403
        assert (await client.get(f"{pipeline.url('ingest')}/v1/consultations/forged")).status_code == 404
    await staff.context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/consultations",
        "/consultations/nouvelle",
        "/consultations/x/modifier",
        "/consultations/x/cloture",
        "/consultations/x",
        "/consultations/x/flux",
        "/consultations/x/contributions/ameliorations",
        "/consultations/x/contributions/ameliorations.csv",
        "/journal",
    ],
)
async def test_every_page_but_sign_in_needs_a_session(pipeline: Pipeline, path: str) -> None:
    forged = {"cod_staff_session": "forged"}
    async with httpx.AsyncClient(base_url=pipeline.url("backoffice"), timeout=10, cookies=forged) as client:
        answer = await client.get(path)
        if path == "/":
            answer = await client.get(answer.headers["location"])
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"].startswith("/connexion")


async def test_free_text_reaches_staff_and_no_public_output(pipeline: Pipeline, browser: Browser) -> None:
    cid = pipeline.open_consultation(seconds=600)
    opened = pipeline.datasets("not_open")[0]["dataset_id"]
    improved = pipeline.datasets("open")[0]["dataset_id"]
    body: dict[str, Any] = {
        "respondent": {"profile": "researcher"},
        "open_requests": [{"dataset_id": opened, "priority": "essential"}],
        "improvement_requests": [{"dataset_id": improved, "kinds": ["api_access"], "comment": f"API {MARKER}"}],
        "suggestions": [{"title": "Registre des fanfares", "description": f"Liste {MARKER}", "holder": MARKER}],
        "platform": {"satisfaction": 2, "comment": f"Plateforme {MARKER}"},
        "consent": CONSENT,
    }
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body)
        assert answer.status_code == 202, answer.text

        staff = await staff_page(browser, pipeline)
        for view in ("ameliorations", "suggestions", "plateforme"):

            async def written(view: str = view) -> bool:
                await staff.goto(f"{pipeline.url('backoffice')}/consultations/{cid}/contributions/{view}")
                return MARKER in await staff.inner_text("main")

            await poll(f"the marker in the {view} view", written, deadline_s=20, interval_s=0.3)
        await staff.context.close()

        closed = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/close", headers=pipeline.admin())
        assert closed.status_code == 200
        released = await client.post(
            f"{pipeline.url('publisher')}/v1/consultations/{cid}/results/release", headers=pipeline.admin()
        )
        assert released.status_code in (204, 404)

        async def files() -> list[str] | None:
            await client.post(
                f"{pipeline.url('publisher')}/v1/consultations/{cid}/results/release", headers=pipeline.admin()
            )
            found = await client.get(f"{pipeline.url('publisher')}/v1/consultations/{cid}/results/files")
            return [f["url"] for f in found.json()["files"]] if found.status_code == 200 else None

        published = await poll("the results public", files, deadline_s=60, interval_s=0.5)
        public = [f"{pipeline.url('publisher')}{url}" for url in published]
        public += [f"{pipeline.url('publisher')}/v1/consultations/{cid}/results"]
        public += [
            f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings?kind={k}"
            for k in ("open", "improve", "suggestions")
        ]
        public += [f"{pipeline.url('ingest')}/", f"{pipeline.url('ingest')}/consultations/{cid}"]
        public += [
            f"{pipeline.url('ingest')}/v1/consultations/{cid}",
            f"{pipeline.url('catalogue')}/v1/datasets?limit=1000",
        ]
        for url in public:
            answer = await client.get(url)
            assert MARKER not in answer.text, url
        assert len(public) >= 15

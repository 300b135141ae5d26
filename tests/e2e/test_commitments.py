"""Closing the loop, end to end with the services as processes: after the close, staff record the
ministry's commitments (one in the workspace in Chromium, two through the API) and approve an excerpt;
a census dataset under a commitment to open it gets its publication date, and the commitment is done
with no staff action."""

import httpx
from playwright.async_api import Browser

from services.catalogue.domain import census_id
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import (
    CONSENT,
    census_rows,
    new_page,
    poll,
    published_results,
    rankings,
    refresh,
    write_census,
)

APPROVED = "Une API documentée serait précieuse."
UNAPPROVED = "Quokkaphonie"  # in a comment nobody approves: it must never be published


async def test_commitments_are_recorded_then_fulfilled_by_the_catalogue(pipeline: Pipeline, browser: Browser) -> None:
    original = pipeline.census.read_text(encoding="utf-8")
    rows, fields = census_rows(pipeline)
    row = next(r for r in rows if not r["date_pub"])
    to_open = census_id(row["titre"])
    to_improve = pipeline.datasets("open")[0]["dataset_id"]
    cid = pipeline.open_consultation(seconds=600)
    admin = pipeline.admin()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for n, comment in enumerate((f"{APPROVED} Merci, Jeanne.", f"Il manque des données {UNAPPROVED}.")):
                answer = await client.post(
                    f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses",
                    json={
                        "respondent": {"profile": "researcher" if n else "journalist"},
                        "open_requests": [{"dataset_id": to_open, "priority": "essential"}],
                        "improvement_requests": [
                            {"dataset_id": to_improve, "kinds": ["api_access"], "comment": comment}
                        ],
                        "suggestions": [{"title": "Registre des fanfares", "description": "Les fanfares de France"}],
                        "consent": CONSENT,
                    },
                )
                assert answer.status_code == 202, answer.text

            async def counted() -> bool:
                return bool((await rankings(client, pipeline, cid, "open"))["respondents"] == 2)

            await poll("both responses counted", counted, deadline_s=20)
            group = (await rankings(client, pipeline, cid, "suggestions"))["items"][0]["key"]
            closed = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/close", headers=admin)
            assert closed.status_code == 200, closed.text
            await published_results(client, pipeline, cid)

            # One commitment from the live priorities in the workspace, in Chromium.
            staff = await new_page(browser, javascript=True, bypass_csp=True)
            await staff.goto(f"{pipeline.url('backoffice')}/connexion?suite=/consultations/{cid}")
            await staff.fill("#username", "agent")
            await staff.fill("#password", "test-staff-password")
            await staff.click("#sign-in")
            await staff.click(f"#ranking-open tr[data-key='{to_open}'] .commit-link")
            assert await staff.input_value("#service") == row["service"]  # the census's service in charge
            await staff.fill("#target", "2027-T2")
            await staff.fill("#note_fr", "Ouverture après anonymisation.")
            await staff.click("#save-commitment")
            await staff.wait_for_url("**/engagements?notice=saved")
            [made] = (
                await client.get(f"{pipeline.url('backoffice')}/v1/consultations/{cid}/commitments", headers=admin)
            ).json()
            assert (made["kind"], made["dataset_id"], made["status"]) == ("open", to_open, "planned")

            # Two through the API.
            api = f"{pipeline.url('backoffice')}/v1/consultations/{cid}/commitments"
            improve = {
                "kind": "improve",
                "dataset_id": to_improve,
                "target": "2027-06-30",
                "status": "in_progress",
                "note": "Une API.",
            }
            add = {
                "kind": "add",
                "suggestion_key": group,
                "service": "DRAC",
                "target": "2028-T1",
                "note": "À recenser.",
            }
            assert (await client.put(f"{api}/ameliorer-api", json=improve, headers=admin)).status_code == 200
            assert (await client.put(f"{api}/ajouter-fanfares", json=add, headers=admin)).status_code == 200
            assert (await client.put(f"{api}/ajouter-fanfares", json=add)).status_code == 401
            bad = await client.put(f"{api}/mauvais", json=add | {"target": "bientôt"}, headers=admin)
            assert bad.status_code == 422
            assert bad.json()["errors"][0]["pointer"] == "/target"

            # An excerpt approved after removing a name; the other comment stays unpublished.
            await staff.goto(
                f"{pipeline.url('backoffice')}/consultations/{cid}/contributions/ameliorations?q=precieuse"
            )
            await staff.click(".propose-excerpt")
            assert "Jeanne" in await staff.input_value("#text")
            await staff.fill("#text", APPROVED)
            await staff.click("#approve-excerpt")
            await staff.wait_for_url("**/engagements?notice=approved")
            assert APPROVED in await staff.inner_text("#excerpts")

            # The census says the dataset is published: the commitment is done, with no staff action.
            opened = dict(row, date_pub="2026-12-15", url="https://www.data.gouv.fr/fr/datasets/orgues/")
            write_census(pipeline, [opened if r is row else r for r in rows], fields)
            await refresh(client, pipeline)

            async def done() -> dict[str, object] | None:
                found = (await client.get(f"{api}/{made['commitment_id']}", headers=admin)).json()
                return found if found["status"] == "done" else None

            fulfilled = await poll("the commitment done by the catalogue", done, deadline_s=30, interval_s=0.5)
            assert fulfilled["done_url"] == "https://www.data.gouv.fr/fr/datasets/orgues/"
            assert [step["by"] for step in fulfilled["history"]] == ["staff", "catalogue"]
            await staff.goto(f"{pipeline.url('backoffice')}/journal")
            assert "engagement tenu (catalogue)" in await staff.inner_text("#journal")
            await staff.context.close()
    finally:
        pipeline.census.write_text(original, encoding="utf-8")
        async with httpx.AsyncClient(timeout=30) as client:
            await refresh(client, pipeline)

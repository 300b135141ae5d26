"""Closing the loop, end to end with the services as processes: after the close, staff record the
ministry's commitments (one in the workspace in Chromium, two through the API) and approve an excerpt;
at the release they are published with the results (valid data package, audit MATCH), on the follow-up
page and its feed; a census dataset under a commitment to open it gets its publication date, and within
30 s the commitment is done everywhere, with no staff action."""

import asyncio
import csv
import io
import uuid
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
from playwright.async_api import Browser

from deploy.local.mail import MailSink
from services.catalogue.domain import census_id
from tests.e2e.anonymity import assert_nothing_identifies_anyone
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import (
    CONSENT,
    assert_valid_package,
    audited,
    axe_violations,
    census_rows,
    files_of,
    new_page,
    poll,
    published_results,
    rankings,
    refresh,
    shot,
    write_census,
)

ATOM = "{http://www.w3.org/2005/Atom}"

APPROVED = "Une API documentée serait précieuse."
UNAPPROVED = "Quokkaphonie"  # in a comment nobody approves: it must never be published


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


async def test_commitments_are_recorded_published_and_fulfilled_by_the_catalogue(
    pipeline: Pipeline, browser: Browser, tmp_path: Path, mailbox: MailSink
) -> None:
    original = pipeline.census.read_text(encoding="utf-8")
    rows, fields = census_rows(pipeline)
    row = next(r for r in rows if not r["date_pub"])
    to_open = census_id(row["titre"])
    to_improve = pipeline.datasets("open")[0]["dataset_id"]
    cid = pipeline.open_consultation(seconds=600)
    admin = pipeline.admin()
    posted = {"Les fanfares de France", "@example.org"}  # identifying, or free text nobody approved
    tokens: list[str] = []
    opener, other = (f"suivi-{who}-{uuid.uuid4().hex[:6]}@example.org" for who in ("a", "b"))
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for n, comment in enumerate((f"{APPROVED} Merci, Jeanne.", f"Il manque des données {UNAPPROVED}.")):
                answer = await client.post(
                    f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses",
                    json={
                        "respondent": {
                            "profile": "researcher" if n else "journalist",
                            "email": f"fanfariste{n}@example.org",
                        },
                        "open_requests": [{"dataset_id": to_open, "priority": "essential"}],
                        "improvement_requests": [
                            {"dataset_id": to_improve, "kinds": ["api_access"], "comment": comment}
                        ],
                        "suggestions": [{"title": "Registre des fanfares", "description": "Les fanfares de France"}],
                        "consent": CONSENT,
                    },
                )
                assert answer.status_code == 202, answer.text
                posted |= {answer.json()["response_id"], answer.json()["respondent_token"]}
                tokens.append(answer.json()["respondent_token"])
            improver = await client.post(
                f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses",
                json={
                    "respondent": {"profile": "student"},
                    "improvement_requests": [{"dataset_id": to_improve, "kinds": ["licence"]}],
                    "consent": CONSENT,
                },
            )
            assert improver.status_code == 202, improver.text
            # Two respondents ask to be told: one asked to open the dataset, the other only to improve another.
            for token, address in ((tokens[0], opener), (improver.json()["respondent_token"], other)):
                opted = await client.post(
                    f"{pipeline.url('ingest')}/consultations/{cid}/suivi", data={"token": token, "email": address}
                )
                assert opted.status_code == 200, opted.text

            async def counted() -> bool:
                return bool((await rankings(client, pipeline, cid, "open"))["respondents"] == 3)

            await poll("the three responses counted", counted, deadline_s=20)
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
            assert await axe_violations(staff) == []
            await staff.fill("#target", "2027-T2")
            await staff.fill("#note_fr", "Ouverture après anonymisation.")
            await staff.click("#save-commitment")
            await staff.wait_for_url("**/engagements?notice=saved")
            assert await axe_violations(staff) == []
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
            assert await axe_violations(staff) == []
            await staff.click("#approve-excerpt")
            await staff.wait_for_url("**/engagements?notice=approved")
            assert APPROVED in await staff.inner_text("#excerpts")
            await shot(staff, "espace-engagements")

            # At the release, the commitments and the approved excerpt are published with the results.
            results = pipeline.url("publisher")
            released = await client.post(f"{results}/v1/consultations/{cid}/results/release", headers=admin)
            assert released.status_code == 204

            async def published() -> dict[str, bytes] | None:
                files = await files_of(client, results, cid, {})
                excerpts = [row["text"] for row in csv_rows(files.get("extraits.csv", b""))]
                return files if len(csv_rows(files.get("engagements.csv", b""))) == 3 and excerpts else None

            files = await poll("the commitments in the public files", published, deadline_s=30, interval_s=0.5)
            assert [row["text"] for row in csv_rows(files["extraits.csv"])] == [APPROVED]
            # Two respondents: every breakdown cell is suppressed, both profiles pooled, and the suggestion
            # group of two publishes none of its words; the commitment on it names it by its public key.
            assert assert_nothing_identifies_anyone(files, posted) > 0
            assert {r["profile"] for r in csv_rows(files["repondants.csv"])} == {"other"}
            [suggested] = csv_rows(files["suggestions.csv"])
            assert suggested["key"].startswith("groupe-")
            assert (suggested["title"], suggested["respondents"]) == ("", "2")
            engaged = {r["commitment_id"]: r for r in csv_rows(files["engagements.csv"])}
            assert engaged["ajouter-fanfares"]["suggestion_key"] == suggested["key"]
            assert engaged["ajouter-fanfares"]["rank"] == "1"
            for name in ("suggestions.csv", "reponses.csv", "resultats.json", "a-ouvrir.csv", "a-ameliorer.csv"):
                assert b"fanfare" not in files[name].lower(), name  # typed by respondents: only staff's title shows
            assert_valid_package(files, tmp_path)
            await audited(f"{results}/v1/consultations/{cid}/results")
            follow_up = f"{results}/consultations/{cid}/suivi"
            page = (await client.get(follow_up)).text
            assert all(title in page for title in (row["titre"], "Registre des fanfares"))
            public = b"".join(files.values()) + page.encode() + (await client.get(f"{follow_up}.atom")).content
            assert UNAPPROVED.encode() not in public
            assert b"Jeanne" not in public

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

            async def done_everywhere() -> bool:
                page = (await client.get(follow_up)).text
                feed = ET.fromstring((await client.get(f"{follow_up}.atom")).content)  # noqa: S314 (our own output)
                lines = {
                    r["commitment_id"]: r
                    for r in csv_rows((await files_of(client, results, cid, {}))["engagements.csv"])
                }
                return (
                    "https://www.data.gouv.fr/fr/datasets/orgues/" in page
                    and len(feed.findall(ATOM + "entry")) == 4
                    and lines[made["commitment_id"]]["status"] == "done"
                )

            await poll("the commitment done on the follow-up page, feed and files", done_everywhere, deadline_s=30)

            def done_mails(address: str) -> list[Any]:
                return [m for m in mailbox.received() if str(m["To"]) == address and "fait" in str(m["Subject"])]

            await poll("the done e-mail", lambda: asyncio.sleep(0, done_mails(opener)), deadline_s=30)
            assert len(done_mails(opener)) == 1
            assert done_mails(other) == []
            await staff.goto(follow_up)
            await shot(staff, "suivi-public")
            await staff.goto(f"{pipeline.url('backoffice')}/journal")
            assert "engagement tenu (catalogue)" in await staff.inner_text("#journal")
            await staff.context.close()
    finally:
        pipeline.census.write_text(original, encoding="utf-8")
        async with httpx.AsyncClient(timeout=30) as client:
            await refresh(client, pipeline)

"""Ingest's public API on the running system: every error status, idempotency, amendments, window edges."""

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import Browser

from deploy.local.mail import MailSink
from deploy.local.processes import ServiceProcess, service_env
from shared.contracts import utc_now
from tests.e2e.conftest import PORTS, SETTINGS, Pipeline
from tests.e2e.helpers import CONSENT, as_tuples, assert_problem, body_for, new_page, poll, poll_equal, post, rankings


async def test_the_catalogue_decides_what_may_be_opened_or_improved(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    already_open = pipeline.datasets("open")[0]["dataset_id"]
    not_open = pipeline.datasets("not_open")[0]["dataset_id"]
    body = {
        "respondent": {"profile": "researcher"},
        "open_requests": [
            {"dataset_id": already_open, "priority": "essential"},
            {"dataset_id": "no-such-dataset", "priority": "useful"},
        ],
        "improvement_requests": [{"dataset_id": not_open, "kinds": ["api_access"]}],
        "consent": CONSENT,
    }
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        problem = assert_problem(await post(client, cid, body), 422)
    assert [e["pointer"] for e in problem["errors"]] == [
        "/open_requests/0/dataset_id",
        "/open_requests/1/dataset_id",
        "/improvement_requests/0/dataset_id",
    ]
    assert "déjà ouvert" in problem["errors"][0]["detail"]
    assert "already open" in problem["errors"][0]["detail"]


async def test_size_type_and_shape_errors_are_problem_details(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        huge = body_for(dataset, suggestions=[{"title": "x", "description": "y" * 2000}] * 40)
        assert_problem(await post(client, cid, huge), 413)
        as_text = await client.post(
            f"/v1/consultations/{cid}/responses", content=b"respondent=x", headers={"content-type": "text/plain"}
        )
        assert_problem(as_text, 415)
        not_json = await client.post(
            f"/v1/consultations/{cid}/responses", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_problem(not_json, 422)
        missing = assert_problem(await post(client, cid, {"respondent": {}}), 422)
        assert {"/respondent/profile", "/consent"} <= {e["pointer"] for e in missing["errors"]}
        assert_problem(await post(client, "nope", body_for(dataset)), 404)


async def test_a_retried_post_gets_the_same_answer_and_counts_once(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[3]["dataset_id"]
    body = body_for(dataset, "essential", response_id=f"retry-{uuid.uuid4().hex}")
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        first = await post(client, cid, body)
        second = await post(client, cid, body)
        assert first.status_code == second.status_code == 202
        assert first.json() == second.json()
        reused = await post(client, cid, body | {"open_requests": [{"dataset_id": dataset, "priority": "useful"}]})
        assert_problem(reused, 422)
        key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
        other = body_for(dataset, "important")
        by_key = [await client.post(f"/v1/consultations/{cid}/responses", json=other, headers=key) for _ in range(2)]
        assert by_key[0].status_code == by_key[1].status_code == 202
        assert by_key[0].json() == by_key[1].json()

        async def counted() -> bool:
            return as_tuples(await rankings(client, pipeline, cid, "open")) == [(dataset, 5, 2)]

        await poll("two respondents, each counted once", counted, deadline_s=10)


async def test_a_respondent_amends_with_their_token_until_the_close(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    first_choice, second_choice = (d["dataset_id"] for d in pipeline.datasets("not_open")[4:6])
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        accepted = (await post(client, cid, body_for(first_choice, "essential"))).json()
        assert accepted["amend_url"].endswith(f"/consultations/{cid}?token={accepted['respondent_token']}")
        amended = body_for(second_choice, "useful")
        amended["respondent"]["token"] = accepted["respondent_token"]
        again = (await post(client, cid, amended)).json()
        assert again["respondent_token"] == accepted["respondent_token"]

        async def replaced() -> bool:
            return as_tuples(await rankings(client, pipeline, cid, "open")) == [(second_choice, 1, 1)]

        await poll("the amendment replacing the first response", replaced, deadline_s=10)
        form = await client.get(f"/consultations/{cid}", params={"token": accepted["respondent_token"]})
    assert form.status_code == 200
    assert f'id="open-{second_choice}-useful" name="open-{second_choice}" value="useful" checked' in form.text


async def test_the_window_edges_are_exact(pipeline: Pipeline) -> None:
    dataset = pipeline.datasets("not_open")[6]["dataset_id"]
    now = utc_now()
    opens_at, closes_at = now + timedelta(seconds=1.5), now + timedelta(seconds=3.5)
    cid = pipeline.define_consultation(opens_at, closes_at)
    answers: list[tuple[int, dict[str, Any]]] = []
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        while utc_now() < closes_at + timedelta(seconds=0.5):
            answer = await post(client, cid, body_for(dataset))
            answers.append((answer.status_code, answer.json()))
            await asyncio.sleep(0.01)
    statuses = [status for status, _ in answers]
    # Refused before, accepted during, refused after: three runs, in that order.
    assert statuses[0] == 409
    assert statuses[-1] == 409
    first_ok, last_ok = statuses.index(202), len(statuses) - 1 - statuses[::-1].index(202)
    assert set(statuses[:first_ok]) == {409}
    assert set(statuses[first_ok : last_ok + 1]) == {202}
    assert set(statuses[last_ok + 1 :]) == {409}
    assert {a["window"] for s, a in answers[:first_ok]} == {"not_yet_open"}
    assert {a["window"] for s, a in answers[last_ok + 1 :]} == {"closed"}
    for _, accepted in answers[first_ok : last_ok + 1]:
        assert opens_at <= datetime.fromisoformat(accepted["received_at"]) < closes_at


async def test_a_client_sending_too_fast_is_told_when_to_retry(pipeline: Pipeline) -> None:
    port = PORTS["ingest"] + 10  # follows COD_TEST_INGEST_PORT, so that parallel runs do not collide
    env = service_env(
        pipeline.infra,
        port,
        SETTINGS
        | {
            "COD_RATE_LIMIT_BURST": "3",
            "COD_RATE_LIMIT_PER_MINUTE": "6",
            "COD_INSTANCE": "limited",
            # The test client plays the ingress: it is the trusted proxy, the client is behind it.
            "COD_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        },
    )
    limited = ServiceProcess("ingest", port, env, pipeline.infra.root / "logs" / "ingest-limited.log")
    limited.start()
    try:
        limited.wait_ready()
        cid = pipeline.open_consultation(seconds=600)
        dataset = pipeline.datasets("not_open")[7]["dataset_id"]
        async with httpx.AsyncClient(base_url=limited.url, timeout=10) as client:
            statuses = []
            for n in range(4):
                # The client rotates what it writes on the left; the ingress appends the address it saw.
                forwarded = {"X-Forwarded-For": f"{n}.{n}.{n}.{n}, 203.0.113.9"}
                answer = await client.post(
                    f"/v1/consultations/{cid}/responses", json=body_for(dataset), headers=forwarded
                )
                statuses.append(answer.status_code)
            assert statuses[:3] == [202, 202, 202]
            refused = await client.post(
                f"/v1/consultations/{cid}/responses",
                json=body_for(dataset),
                headers={"X-Forwarded-For": "9.9.9.9, 203.0.113.9"},
            )
            other = await client.post(
                f"/v1/consultations/{cid}/responses",
                json=body_for(dataset),
                headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
            )
            assert other.status_code == 202  # another client behind the same ingress has its own bucket
    finally:
        assert limited.stop() == 0
    problem = assert_problem(refused, 429)
    assert statuses[3] == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Retry" in problem["detail"] or "réessayez" in problem["detail"]


async def test_a_token_ingest_did_not_issue_is_refused(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        invented = body_for(dataset) | {"respondent": {"profile": "student", "token": "aaaaaaaaaaaaaaaa"}}
        refused = assert_problem(await post(client, cid, invented), 422)
        assert refused["errors"][0]["pointer"] == "/respondent/token"
        page = await client.get(f"/consultations/{cid}", params={"token": "aaaaaaaaaaaaaaaa"})
        assert "aaaaaaaaaaaaaaaa" not in page.text


async def test_an_address_that_answered_before_must_confirm_by_its_link(pipeline: Pipeline, mailbox: MailSink) -> None:
    """Knowing someone's e-mail address never lets anyone act as them: the second answer with it waits,
    uncounted, for the link sent to the address; following it replaces the first answer."""
    cid = pipeline.open_consultation(seconds=600)
    first_dataset, second_dataset = (d["dataset_id"] for d in pipeline.datasets("not_open")[3:5])
    address = f"jeanne.{uuid.uuid4().hex[:8]}@example.org"
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        owner = await post(
            client, cid, body_for(first_dataset, "essential", respondent={"profile": "student", "email": address})
        )
        assert owner.status_code == 202, owner.text
        intruder = await post(
            client, cid, body_for(second_dataset, "useful", respondent={"profile": "student", "email": address.upper()})
        )
        assert intruder.status_code == 202, intruder.text
        held = intruder.json()
        assert held["pending"] is True
        assert held["respondent_token"] is None
        assert owner.json()["respondent_token"] not in intruder.text

        async def counted() -> list[tuple[str, int, int]]:
            return as_tuples(await rankings(client, pipeline, cid, "open"))

        await poll_equal("the first answer counted", counted, [(first_dataset, 3, 1)], deadline_s=20)

        def sent() -> list[Any]:
            return [m for m in mailbox.received() if str(m["To"]).lower() == address]

        await poll("the confirmation e-mail", lambda: asyncio.sleep(0, sent()), deadline_s=20)
        [message] = sent()
        link = re.search(r"https?://\S+/confirmation/\S+", message.get_content())
        assert link is not None
        assert (await counted()) == [(first_dataset, 3, 1)], "still the first answer until the link is followed"
        forged = await client.post(link.group(0).split("?")[0], data={"jeton": "forged"})
        assert forged.status_code == 403
        page = await client.get(link.group(0))
        assert page.status_code == 200
        jeton = re.search(r'name="jeton" value="([^"]+)"', page.text)
        assert jeton is not None
        confirmed = await client.post(link.group(0).split("?")[0], data={"jeton": jeton.group(1)})
        assert confirmed.status_code == 200
        assert owner.json()["respondent_token"] in confirmed.text  # the address's owner gets their link back
        await poll_equal("the confirmed answer replacing the first", counted, [(second_dataset, 1, 1)], deadline_s=20)
        again = await client.post(link.group(0).split("?")[0], data={"jeton": jeton.group(1)})
        assert again.status_code == 404


async def test_bad_form_input_is_422_and_a_form_from_another_site_403(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    form = {"profile": "student", f"open-{dataset}": "useful", "satisfaction": "²", "consent": "yes"}
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        bad = await client.post(f"/consultations/{cid}", data=form)
        assert bad.status_code == 422
        assert "Satisfaction" in bad.text
        foreign = await client.post(
            f"/consultations/{cid}", data=form | {"satisfaction": "4"}, headers={"Origin": "https://attacker.example"}
        )
        assert foreign.status_code == 403
        same_site = await client.post(
            f"/consultations/{cid}", data=form | {"satisfaction": "4"}, headers={"Origin": pipeline.url("ingest")}
        )
        assert same_site.status_code == 200
        assert "Merci" in same_site.text
        assert same_site.headers["content-security-policy"].startswith("default-src 'self'")
        assert same_site.headers["x-content-type-options"] == "nosniff"
        notice = await client.get("/confidentialite")
        assert notice.status_code == 200
        assert "pseudonymisés" in notice.text


async def test_a_respondent_withdraws_with_their_link_and_leaves_every_ranking(
    pipeline: Pipeline, browser: Browser
) -> None:
    cid = pipeline.open_consultation(seconds=600)
    kept, withdrawn = (d["dataset_id"] for d in pipeline.datasets("not_open")[5:7])
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        stays = await post(client, cid, body_for(kept, "useful"))
        leaves = await post(client, cid, body_for(withdrawn, "essential"))
        assert (stays.status_code, leaves.status_code) == (202, 202)

        async def counted() -> list[tuple[str, int, int]]:
            return as_tuples(await rankings(client, pipeline, cid, "open"))

        await poll_equal("both counted", counted, [(withdrawn, 3, 1), (kept, 1, 1)], deadline_s=20)
        page = await new_page(browser, javascript=False)
        await page.goto(leaves.json()["amend_url"])
        await page.click("#withdraw-link")
        await page.click("#withdraw")
        await page.wait_for_selector("#withdrawn")
        await page.context.close()
        await poll_equal("the withdrawn answer gone", counted, [(kept, 1, 1)], deadline_s=20)
        assert (await rankings(client, pipeline, cid, "open"))["respondents"] == 1
        forged = await client.post(f"/v1/consultations/{cid}/withdrawal", json={"token": "a" * 32})
        assert forged.status_code == 422
        # With the same link, the respondent may answer again: they count again.
        again = body_for(
            withdrawn, "important", respondent={"profile": "citizen", "token": leaves.json()["respondent_token"]}
        )
        assert (await post(client, cid, again)).status_code == 202
        await poll_equal("the answer given again", counted, [(withdrawn, 2, 1), (kept, 1, 1)], deadline_s=20)
        by_api = await client.post(
            f"/v1/consultations/{cid}/withdrawal", json={"token": stays.json()["respondent_token"]}
        )
        assert by_api.status_code == 202
        await poll_equal("the API withdrawal", counted, [(withdrawn, 2, 1)], deadline_s=20)

"""The publisher on the real infrastructure: closing while scoring restarts, open-data files that
validate, audit and identify no one, the embargo, one publication despite SIGKILL and two replicas, and
scoring killed when the close asks for its tallies."""

import asyncio
import csv
import io
import json
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from deploy.local.processes import ServiceProcess, service_env
from shared.contracts import utc_now
from shared.topics import TALLIES, TALLY_REQUESTS
from tests.e2e.anonymity import assert_nothing_identifies_anyone
from tests.e2e.conftest import ADMIN_TOKEN, SETTINGS, Pipeline
from tests.e2e.helpers import (
    SUGGESTIONS,
    assert_valid_package,
    audited,
    files_of,
    issued_token,
    poll,
    published_results,
    random_body,
    results_messages,
    submit,
    topic_messages,
)
from tests.e2e.truth import Accepted, expected_rankings, ranked

RESPONDENTS = 100


async def metric(client: httpx.AsyncClient, base: str, name: str) -> float:
    try:
        text = (await client.get(f"{base}/metrics", timeout=2)).text
    except httpx.TransportError:
        return 0.0
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_responses_up_to_the_close_are_all_in_the_results_while_scoring_restarts(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    rng = random.Random(66)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:30]
    now = utc_now()
    closes_at = now + timedelta(seconds=40)
    cid = pipeline.define_consultation(now - timedelta(seconds=1), closes_at)
    scoring = pipeline.services["scoring"]
    accepted: list[Accepted] = []
    refused: list[str] = []

    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:

        async def respondent(n: int) -> None:
            """Posts (and sometimes amends) until the consultation refuses: up to the last instant."""
            token = issued_token(cid, f"close-{n:03d}-{uuid.uuid4().hex[:8]}")
            while True:
                body = random_body(rng, to_open, to_improve)
                body["respondent"]["token"] = token
                answer = await submit(client, cid, body)
                if answer.status_code == 409:
                    refused.append(token)
                    return
                assert answer.status_code == 202, answer.text
                reply = answer.json()
                accepted.append(Accepted(body, reply["response_id"], reply["respondent_token"], reply["received_at"]))

        async def scoring_down_across_the_close() -> None:
            # Scoring is killed 3 s before the close and comes back 5 s after it: the responses
            # accepted in between wait in Kafka, and the publisher must wait for them.
            await asyncio.sleep(max((closes_at - utc_now()).total_seconds() - 3, 0))
            scoring.kill()
            await asyncio.sleep(8)
            scoring.start()
            await asyncio.to_thread(scoring.wait_ready)

        async with asyncio.TaskGroup() as group:
            group.create_task(scoring_down_across_the_close())
            for n in range(RESPONDENTS):
                group.create_task(respondent(n))

        assert len(accepted) > 2000, "thousands of responses"
        assert len(refused) == RESPONDENTS, "every respondent was refused once the consultation closed"
        last = max(a.received for a in accepted)
        assert closes_at - timedelta(seconds=1) < last < closes_at, f"responses accepted up to the close: {last}"

        results = await published_results(client, pipeline, cid, deadline_s=120)
        truth = expected_rankings(accepted, lambda title: SUGGESTIONS[title])
        for kind in ("open", "improve", "suggestions"):
            got = [(r["key"], r["score"], r["respondents"]) for r in results[kind]]
            assert got == ranked(truth[kind]), kind
        for row in results["open"]:
            assert row["by_profile"] == truth["open"][row["key"]].by_profile
        assert results["respondents"] == RESPONDENTS
        assert (results["excluded_respondents"], results["exclusions"]) == (0, [])  # nobody set aside
        assert len(await results_messages(pipeline.infra.kafka_bootstrap, cid)) == 1

        # The files: public only from the publication date; the ministry sees them at once.
        base = pipeline.url("publisher")
        embargoed = await client.get(f"{base}/v1/consultations/{cid}/results/files")
        assert embargoed.status_code == 403
        assert embargoed.headers["content-type"] == "application/problem+json"
        assert datetime.fromisoformat(embargoed.json()["public_from"]) > closes_at
        files = await files_of(client, base, cid, pipeline.admin())
        respondents = list(csv.DictReader(io.StringIO(files["repondants.csv"].decode())))
        assert len(respondents) == RESPONDENTS
        assert {r["exclusion"] for r in respondents} == {""}
        assert files["exclusions.csv"].count(b"\r\n") == 1  # the header only
        assert json.loads(files["methode.json"])["detection"]["set_aside"] == {"by_reason": {}, "total": 0}
        assert sum(int(r["submissions"]) for r in respondents) == len({a.response_id for a in accepted})
        assert files["resultats.json"].decode().count('"rank"') == sum(
            len(results[k]) for k in ("open", "improve", "suggestions")
        )
        # Nothing published identifies anyone: no small cell, no token or response id, and of the
        # titles typed for a suggestion group only the one most of its respondents typed, if it has enough.
        sizes = {r["key"]: r["respondents"] for r in results["suggestions"]}
        titles = {r["key"]: r["title"] for r in csv.DictReader(io.StringIO(files["suggestions.csv"].decode()))}
        never = {a.token for a in accepted} | {a.response_id for a in accepted}
        for title, key in SUGGESTIONS.items():
            if key.startswith("title:") and (sizes.get(key, 0) < 5 or titles[key] != title):
                never.add(title)
        assert "registre des Fanfares !" in never or "Registre des fanfares" in never  # one title per group
        assert assert_nothing_identifies_anyone(files, never) > 0
        assert [int(r["respondent"]) for r in respondents] == list(range(1, RESPONDENTS + 1))

        assert_valid_package(files, tmp_path)

        results_url = f"{base}/v1/consultations/{cid}/results"
        await audited(results_url, "--token", ADMIN_TOKEN)

        released = await client.post(f"{base}/v1/consultations/{cid}/results/release", headers=pipeline.admin())
        assert released.status_code == 204
        public = await client.get(f"{base}/v1/consultations/{cid}/results/a-ouvrir.csv")
        assert public.status_code == 200
        assert public.content == files["a-ouvrir.csv"]
        assert public.headers["content-type"] == "text/csv; charset=utf-8"
        # The public's results are the published ones: the same totals as those frozen for staff, no small cell.
        published = (await client.get(results_url)).json()
        assert published == json.loads(files["resultats.json"])
        for kind in ("open", "improve"):
            assert [(r["key"], r["score"], r["respondents"]) for r in published[kind]] == ranked(truth[kind])
        assert sorted((r["score"], r["respondents"]) for r in published["suggestions"]) == sorted(
            (r["score"], r["respondents"]) for r in results["suggestions"]
        )
        assert published["respondents"] == RESPONDENTS


async def test_one_publication_despite_a_sigkill_during_it_and_two_replicas(pipeline: Pipeline) -> None:
    rng = random.Random(67)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:30]
    cid = pipeline.open_consultation(seconds=3600)
    first = pipeline.services["publisher"]
    second = ServiceProcess(
        "publisher",
        18013,
        service_env(
            pipeline.infra,
            18013,
            SETTINGS | {"COD_INSTANCE": "publisher-b"},
        ),
        pipeline.infra.root / "logs" / "publisher-b.log",
    )
    second.start()
    scoring = pipeline.services["scoring"]
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        try:
            await asyncio.to_thread(second.wait_ready)
            accepted = []
            for n in range(400):
                answer = await submit(client, cid, random_body(rng, to_open, to_improve))
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json())
                if n == 300:
                    # Scoring stops: the last hundred responses wait in Kafka, so both publishers
                    # are held in their watermark wait, mid-publication, when one is killed.
                    scoring.kill()
            closed = await client.post(f"/v1/consultations/{cid}/close", headers=pipeline.admin())
            assert closed.status_code == 200

            async def both_publishing() -> bool:
                counts = [await metric(client, p.url, "publisher_publications_in_progress") for p in (first, second)]
                return counts == [1.0, 1.0]

            await poll("both replicas publishing", both_publishing, deadline_s=30, interval_s=0.05)
            first.kill()
            scoring.start()
            await asyncio.to_thread(scoring.wait_ready)
            first.start()
            await asyncio.to_thread(first.wait_ready)

            results = await published_results(client, pipeline, cid, deadline_s=120)
            assert results["respondents"] == len({a["respondent_token"] for a in accepted}) == 400
            await published_results(client, pipeline, cid, url=second.url)
            messages = await results_messages(pipeline.infra.kafka_bootstrap, cid)
            assert len(messages) == 1
            assert messages[0] == results

            # One set of files: both replicas serve the same bytes, under the same manifest.
            async def same_files() -> dict[str, bytes] | None:
                a = await files_of(client, first.url, cid, pipeline.admin())
                b = await files_of(client, second.url, cid, pipeline.admin())
                return a if a == b else None

            files = await poll("the same files from both replicas", same_files, deadline_s=30)
            public = json.loads(files["resultats.json"])
            assert (public["event_id"], public["respondents"]) == (results["event_id"], results["respondents"])
            for kind in ("open", "improve"):
                assert [(r["key"], r["score"]) for r in public[kind]] == [(r["key"], r["score"]) for r in results[kind]]
            never = {a["response_id"] for a in accepted} | {a["respondent_token"] for a in accepted}
            assert_nothing_identifies_anyone(files, never)
            published = await metric(client, first.url, "publisher_results_published_total") + await metric(
                client, second.url, "publisher_results_published_total"
            )
            assert published <= 1  # the killed replica's count died with it; no survivor emitted twice
        finally:
            assert second.stop() == 0
            if not scoring.running():
                scoring.start()
                await asyncio.to_thread(scoring.wait_ready)


async def test_scoring_killed_when_the_close_is_due_sends_its_tallies_once_back_and_the_results_are_exact(
    pipeline: Pipeline,
) -> None:
    rng = random.Random(68)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:30]
    cid = pipeline.open_consultation(seconds=3600)
    scoring = pipeline.services["scoring"]
    bootstrap = pipeline.infra.kafka_bootstrap
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        accepted: list[Accepted] = []
        for _ in range(150):
            body = random_body(rng, to_open, to_improve)
            answer = await submit(client, cid, body)
            assert answer.status_code == 202, answer.text
            reply = answer.json()
            accepted.append(Accepted(body, reply["response_id"], reply["respondent_token"], reply["received_at"]))

        async def all_scored() -> bool:
            ranking = await client.get(
                f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings", headers=pipeline.admin()
            )
            return ranking.status_code == 200 and ranking.json()["respondents"] == len(accepted)

        # Everything is scored and committed: the watermark holds without scoring; only its tallies are missing.
        await poll("every response scored", all_scored, deadline_s=60)
        scoring.kill()
        try:
            closed = await client.post(f"/v1/consultations/{cid}/close", headers=pipeline.admin())
            assert closed.status_code == 200

            async def asked() -> list[dict[str, object]]:
                return await topic_messages(bootstrap, TALLY_REQUESTS, lambda record: record.key == cid.encode())

            await poll("the publisher asked scoring for its tallies", asked, deadline_s=60, interval_s=0.25)
            unpublished = await client.get(
                f"{pipeline.url('publisher')}/v1/consultations/{cid}/results", headers=pipeline.admin()
            )
            assert unpublished.status_code == 404, "no results without scoring's tallies"
        finally:
            scoring.start()
            await asyncio.to_thread(scoring.wait_ready)

        results = await published_results(client, pipeline, cid, deadline_s=120)
        truth = expected_rankings(accepted, lambda title: SUGGESTIONS[title])
        for kind in ("open", "improve", "suggestions"):
            assert [(r["key"], r["score"], r["respondents"]) for r in results[kind]] == ranked(truth[kind]), kind
        assert results["respondents"] == len({a.token for a in accepted}) == len(accepted)
        assert len(await results_messages(bootstrap, cid)) == 1
        # Scoring answered the request it read once back (or a retry of it), in the publisher's consultation.
        replies = await topic_messages(bootstrap, TALLIES, lambda record: record.key == cid.encode())
        requests = {r["event_id"] for r in await asked()}
        assert replies, "scoring sent its tallies"
        assert {r["request_id"] for r in replies} <= requests

"""The whole pipeline on real Kafka and SecantusDB, the four services as processes."""

import asyncio
import json
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts import utc_now
from shared.topics import DEAD_LETTERS, RESPONSES_SUBMITTED
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import (
    CONSENT,
    SUGGESTIONS,
    as_tuples,
    body_for,
    issued_token,
    poll,
    poll_equal,
    post,
    published_results,
    random_body,
    rankings,
    results_messages,
    submit,
)
from tests.e2e.truth import Accepted, expected_rankings, ranked


async def test_every_accepted_response_is_counted_once_and_results_are_emitted_once(
    pipeline: Pipeline,
) -> None:
    rng = random.Random(2026)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:15]
    cid = pipeline.open_consultation(seconds=25)
    accepted: list[Accepted] = []

    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:

        async def respondent(n: int) -> None:
            """One respondent: a first response, perhaps retried, perhaps amended (in order)."""
            token = None if n % 5 == 0 else issued_token(cid, f"respondent-{n:04d}-{uuid.uuid4().hex[:8]}")
            for submission in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
                body = random_body(rng, to_open, to_improve)
                body["response_id"] = f"resp-{n:04d}-{submission}-{uuid.uuid4().hex[:6]}"
                if token:
                    body["respondent"]["token"] = token
                elif submission:
                    break  # without a token there is nothing to amend with
                retries = 2 if rng.random() < 0.15 else 1  # a retried POST: same response_id
                for _ in range(retries):
                    answer = await submit(client, cid, body)
                    assert answer.status_code == 202, answer.text
                    reply = answer.json()
                    accepted.append(
                        Accepted(body, reply["response_id"], reply["respondent_token"], reply["received_at"])
                    )

        semaphore = asyncio.Semaphore(16)

        async def bounded(n: int) -> None:
            async with semaphore:
                await respondent(n)

        await asyncio.gather(*(bounded(n) for n in range(200)))

        response_ids = [a.response_id for a in accepted]
        assert len(response_ids) > len(set(response_ids)), "the stream must include retried POSTs"
        assert len({a.token for a in accepted}) < len(set(response_ids)), "and amendments"
        truth = expected_rankings(accepted, lambda title: SUGGESTIONS[title])

        for kind in ("open", "improve", "suggestions"):

            async def current(kind: str = kind) -> list[tuple[str, int, int]]:
                return as_tuples(await rankings(client, pipeline, cid, kind))

            await poll_equal(f"{kind} ranking equal to the hand-computed one", current, ranked(truth[kind]), 60)

        page = await rankings(client, pipeline, cid, "open")
        assert page["respondents"] == len({a.token for a in accepted})
        for item in page["items"]:
            assert item["by_profile"] == truth["open"][item["key"]].by_profile
            assert item["title"], "rows carry the catalogue's title"
        improve = await rankings(client, pipeline, cid, "improve")
        for item in improve["items"]:
            assert item["by_improvement"] == truth["improve"][item["key"]].by_improvement

        closes_at = (await client.get(f"/v1/consultations/{cid}")).json()["closes_at"]
        await poll("the close", lambda: asyncio.sleep(0, utc_now().isoformat() >= closes_at), deadline_s=30)
        late = await post(client, cid, random_body(rng, to_open, to_improve))
        assert late.status_code == 409
        assert late.headers["content-type"] == "application/problem+json"

        results = await published_results(client, pipeline, cid)

    assert [(r["key"], r["score"], r["respondents"]) for r in results["open"]] == ranked(truth["open"])
    assert [(r["key"], r["score"], r["respondents"]) for r in results["improve"]] == ranked(truth["improve"])
    assert [(r["key"], r["score"], r["respondents"]) for r in results["suggestions"]] == ranked(truth["suggestions"])
    assert results["respondents"] == page["respondents"]
    assert results["method"]["weights"] == {"essential": 3, "important": 2, "useful": 1}
    messages = await results_messages(pipeline.infra.kafka_bootstrap, cid)
    assert len(messages) == 1
    assert messages[0] == results


async def test_a_posted_response_shows_in_the_rankings_within_one_second(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    body = body_for(dataset, "important", "citizen")
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body)
        assert answer.status_code == 202
        accepted_at = time.monotonic()

        async def visible() -> bool:
            return as_tuples(await rankings(client, pipeline, cid, "open")) == [(dataset, 2, 1)]

        await poll("the response in the rankings", visible, deadline_s=5, interval_s=0.02)
    assert time.monotonic() - accepted_at < 1.0


async def test_http_errors_are_problem_details(pipeline: Pipeline) -> None:
    now = utc_now()
    future = pipeline.define_consultation(now + timedelta(hours=1), now + timedelta(hours=2))
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    valid = body_for(dataset, "useful", "student")
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        not_yet = await post(client, future, valid)
        unknown = await post(client, "no-such-consultation", valid)
        invalid = await post(
            client,
            future,
            {
                "respondent": {"profile": "astronaut"},
                "open_requests": [{"dataset_id": dataset, "priority": "high"}],
                "consent": CONSENT,
            },
        )
        unauthorised = await client.put(
            f"/v1/consultations/{future}",
            json={"title": "x", "opens_at": now.isoformat(), "closes_at": now.isoformat()},
        )
    assert (not_yet.status_code, not_yet.json()["window"]) == (409, "not_yet_open")
    assert unknown.status_code == 404
    assert invalid.status_code == 422
    assert {e["pointer"] for e in invalid.json()["errors"]} == {
        "/respondent/profile",
        "/open_requests/0/priority",
    }
    assert unauthorised.status_code == 401
    for answer in (not_yet, unknown, invalid, unauthorised):
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == answer.status_code


async def test_a_message_no_consumer_can_read_is_dead_lettered_and_processing_goes_on(
    pipeline: Pipeline,
) -> None:
    cid = pipeline.open_consultation(seconds=600)
    marker = f"garbage-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(RESPONSES_SUBMITTED, b'{"not": "a response"}', key=marker.encode())
    finally:
        await producer.stop()
    dataset = pipeline.datasets("not_open")[1]["dataset_id"]
    body = body_for(dataset, "essential", "tourism")
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body)
        assert answer.status_code == 202

        async def counted() -> bool:
            return as_tuples(await rankings(client, pipeline, cid, "open")) == [(dataset, 3, 1)]

        await poll("the valid response counted", counted, deadline_s=10)

    consumer = AIOKafkaConsumer(
        DEAD_LETTERS, bootstrap_servers=pipeline.infra.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:

        async def dead_lettered() -> dict[str, Any] | None:
            batch = await consumer.getmany(timeout_ms=200)
            for record in (r for records in batch.values() for r in records):
                letter = json.loads(record.value)
                if letter["key"] == marker:
                    return dict(letter)
            return None

        letter = await poll("the dead letter", dead_lettered, deadline_s=10, interval_s=0)
    finally:
        await consumer.stop()
    assert letter["service"] == "catalogue"
    assert letter["source_topic"] == RESPONSES_SUBMITTED
    assert "ResponseSubmitted" in letter["reason"]


async def test_every_service_exposes_prometheus_metrics_that_move(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[2]["dataset_id"]
    body = body_for(dataset, "useful", "company")
    async with httpx.AsyncClient(timeout=10) as client:

        async def sample(service: str, name: str) -> float:
            text = (await client.get(f"{pipeline.url(service)}/metrics")).text
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(name) and not line.startswith("#")
            )

        before = {
            "ingest": await sample("ingest", 'ingest_responses_total{outcome="accepted"}'),
            "catalogue": await sample("catalogue", "catalogue_responses_enriched_total"),
            "scoring": await sample("scoring", 'scoring_responses_total{outcome="counted"}'),
        }
        answer = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body)
        assert answer.status_code == 202

        async def moved() -> bool:
            return all(
                [
                    await sample("ingest", 'ingest_responses_total{outcome="accepted"}') == before["ingest"] + 1,
                    await sample("catalogue", "catalogue_responses_enriched_total") == before["catalogue"] + 1,
                    await sample("scoring", 'scoring_responses_total{outcome="counted"}') == before["scoring"] + 1,
                ]
            )

        await poll("business metrics to move", moved, deadline_s=10)
        for service in ("catalogue", "scoring"):
            assert await sample(service, "faststream_received_messages_total") > 0
        for service in ("ingest", "catalogue", "scoring", "publisher"):
            assert await sample(service, "process_resident_memory_bytes") > 0


async def test_an_administrator_closes_a_consultation_early_and_its_results_are_published(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=3600)
    dataset = pipeline.datasets("not_open")[5]["dataset_id"]
    body = body_for(dataset, "essential", "journalist")
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
        assert (await post(client, cid, body)).status_code == 202
        assert (await client.post(f"/v1/consultations/{cid}/close")).status_code == 401
        closed = await client.post(f"/v1/consultations/{cid}/close", headers=pipeline.admin())
        assert closed.status_code == 200, closed.text
        assert closed.json()["closes_at"] <= utc_now().isoformat()
        late = await post(client, cid, body)
        assert (late.status_code, late.json()["window"]) == (409, "closed")
        again = await client.post(f"/v1/consultations/{cid}/close", headers=pipeline.admin())
        assert again.status_code == 409

        results = await published_results(client, pipeline, cid)
    assert [(r["key"], r["score"], r["respondents"]) for r in results["open"]] == [(dataset, 3, 1)]
    assert len(await results_messages(pipeline.infra.kafka_bootstrap, cid)) == 1

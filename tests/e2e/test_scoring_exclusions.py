"""Ballot stuffing set aside: staff's exclusions reach scoring through Kafka; the filtered rankings equal
a hand computation over the respondents kept, the raw ones still count everyone, and a SIGKILL of
scoring in between loses nothing."""

import asyncio
import json
import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.backoffice.detection import DEFAULT_SETTINGS
from services.ingest.domain import respondent_key
from services.ingest.settings import DEV_PSEUDONYM_SECRET
from shared.contracts import Decision, ExclusionDecided, Signal, utc_now
from shared.topics import EXCLUSIONS, SCORING_GROUP, TOPICS
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import SUGGESTIONS, as_tuples, assert_problem, issued_token, poll, random_body
from tests.e2e.truth import Accepted, expected_rankings, ranked

KINDS = ("open", "improve", "suggestions")
EXCLUSIONS_PARTITIONS = next(spec.partitions for spec in TOPICS if spec.name == EXCLUSIONS)
DEADLINE_S = 90  # a transaction the killed process left open may hold for its 60 s lifetime
SETTINGS = DEFAULT_SETTINGS  # the rule's thresholds: scoring only carries them


def decision(cid: str, cluster_id: str, choice: Decision, keys: list[str]) -> tuple[str, ExclusionDecided]:
    now = utc_now()
    event = ExclusionDecided(
        event_id=str(uuid.uuid4()),
        occurred_at=now,
        consultation_id=cid,
        cluster_id=cluster_id,
        decision=choice,
        reason="Rafale de réponses identiques depuis un même réseau en quelques minutes.",
        signals=[Signal.NETWORK_BURST, Signal.SAME_ANSWERS],
        first_at=now - timedelta(minutes=10),
        last_at=now,
        datasets=[],
        respondent_keys=keys,
        settings=SETTINGS,
        decided_by="agent",
    )
    return event.key, event


async def produce(bootstrap: str, events: list[tuple[str, ExclusionDecided]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, event in events:
            await producer.send_and_wait(EXCLUSIONS, event.model_dump_json().encode(), key=key.encode())
    finally:
        await producer.stop()


async def scoring_caught_up_on_exclusions(bootstrap: str) -> bool:
    """Whether the scoring group's committed offsets reached the end of the exclusions topic: what the
    publisher's watermark reads."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        partitions = [TopicPartition(EXCLUSIONS, p) for p in range(EXCLUSIONS_PARTITIONS)]
        end = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(SCORING_GROUP, partitions=partitions)
    finally:
        await admin.close()
        await consumer.stop()
    return all(tp in committed and committed[tp].offset >= end[tp] for tp in partitions)


async def test_exclusions_filter_the_rankings_survive_a_sigkill_and_clear_back(pipeline: Pipeline) -> None:
    rng = random.Random(17)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")][:12]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:8]
    cid = pipeline.open_consultation(seconds=900)
    bootstrap = pipeline.infra.kafka_bootstrap
    scoring = pipeline.services["scoring"]
    url = f"{pipeline.url('scoring')}/v1/consultations/{cid}"
    accepted: dict[str, list[Accepted]] = {}  # by respondent key

    async with httpx.AsyncClient(timeout=30, headers=pipeline.admin()) as client:

        async def answer(name: str, body: dict[str, Any]) -> str:
            token = issued_token(cid, f"{name}-{uuid.uuid4().hex[:8]}")
            body = body | {"respondent": body["respondent"] | {"token": token}}
            reply = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body)
            assert reply.status_code == 202, reply.text
            data = reply.json()
            key = respondent_key(DEV_PSEUDONYM_SECRET.encode(), cid, token)
            accepted.setdefault(key, []).append(
                Accepted(body, data["response_id"], data["respondent_token"], data["received_at"])
            )
            return key

        honest = [await answer(f"honest-{n}", random_body(rng, to_open, to_improve)) for n in range(20)]
        stuffed = random_body(rng, to_open, to_improve) | {"suggestions": [{"title": "Registre des fanfares"}]}
        bots = [await answer(f"bot-{n}", dict(stuffed)) for n in range(10)]
        late_bot_token = issued_token(cid, f"late-bot-{uuid.uuid4().hex[:8]}")
        late_bot = respondent_key(DEV_PSEUDONYM_SECRET.encode(), cid, late_bot_token)

        def truth(keys: list[str]) -> dict[str, list[tuple[str, int, int]]]:
            answers = [a for key in keys for a in accepted.get(key, [])]
            rows = expected_rankings(answers, lambda title: SUGGESTIONS[title])
            return {kind: ranked(rows[kind]) for kind in KINDS}

        async def pages(view: str | None) -> dict[str, dict[str, Any]]:
            found = {}
            for kind in KINDS:
                params: dict[str, str | int] = {"kind": kind, "limit": 1000}
                if view:
                    params["view"] = view
                got = await client.get(f"{url}/rankings", params=params)
                assert got.status_code == 200, got.text
                found[kind] = got.json()
            return found

        async def reached(raw_keys: list[str], kept_keys: list[str], set_aside: int) -> bool:
            raw, kept = await pages("raw"), await pages("filtered")
            return (
                {k: as_tuples(p) for k, p in raw.items()} == truth(raw_keys)
                and {k: as_tuples(p) for k, p in kept.items()} == truth(kept_keys)
                and all(p["respondents"] == len(kept_keys) for p in kept.values())
                and all(p["respondents"] == len(raw_keys) for p in raw.values())
                and all(p["excluded_respondents"] == set_aside for p in [*raw.values(), *kept.values()])
            )

        everyone = honest + bots
        await poll("every answer scored", lambda: reached(everyone, everyone, 0), deadline_s=DEADLINE_S)
        assert all(p["view"] == "raw" for p in (await pages(None)).values())  # nothing excluded: raw by default

        # k1 and k2 overlap on bots 4 and 5 (attributed to k1, the first by id); k2 lists one who has
        # not answered yet. A cleared cluster sets nobody aside.
        await produce(
            bootstrap,
            [
                decision(cid, "k1", Decision.EXCLUDE, bots[:6]),
                decision(cid, "k2", Decision.EXCLUDE, [*bots[4:], late_bot]),
                decision(cid, "k3", Decision.CLEAR, honest[:3]),
            ],
        )
        await poll("the exclusions applied", lambda: reached(everyone, honest, 10), deadline_s=DEADLINE_S)
        assert all(p["view"] == "filtered" for p in (await pages(None)).values())  # filtered by default now
        await poll("the decisions committed", lambda: scoring_caught_up_on_exclusions(bootstrap), deadline_s=30)

        # SIGKILL, and while scoring is down the late bot answers; it is set aside once counted.
        scoring.kill()
        late = random_body(rng, to_open, to_improve)
        late["respondent"]["token"] = late_bot_token
        reply = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=late)
        assert reply.status_code == 202, reply.text
        data = reply.json()
        accepted[late_bot] = [Accepted(late, data["response_id"], data["respondent_token"], data["received_at"])]
        scoring.start()
        await asyncio.to_thread(scoring.wait_ready)
        everyone = [*everyone, late_bot]
        await poll("the late bot set aside", lambda: reached(everyone, honest, 11), deadline_s=DEADLINE_S)

        listed = await client.get(f"{url}/exclusions")
        assert listed.status_code == 200, listed.text
        assert listed.json()["consultation_id"] == cid
        assert [(e["cluster_id"], e["respondents"]) for e in listed.json()["exclusions"]] == [("k1", 6), ("k2", 5)]
        ballots = await client.get(f"{url}/ballots")
        assert ballots.status_code == 200
        marks = [json.loads(line)["exclusion"] for line in ballots.text.splitlines() if line]
        assert sorted(m for m in marks if m) == ["k1"] * 6 + ["k2"] * 5
        assert marks.count(None) == len(honest)

        assert_problem(await client.get(f"{url}/rankings", params={"view": "cooked"}), 422)
        assert_problem(await client.get(f"{url}/exclusions", headers={"Authorization": "Bearer nope"}), 401)

        # Clearing k1 puts back the bots only k1 listed; bots 4 and 5 stay out, now for k2.
        await produce(bootstrap, [decision(cid, "k1", Decision.CLEAR, bots[:6])])
        kept = honest + bots[:4]
        await poll("k1 cleared", lambda: reached(everyone, kept, 7), deadline_s=DEADLINE_S)
        listed = await client.get(f"{url}/exclusions")
        assert [(e["cluster_id"], e["respondents"]) for e in listed.json()["exclusions"]] == [("k2", 7)]
        await produce(bootstrap, [decision(cid, "k2", Decision.CLEAR, [*bots[4:], late_bot])])
        await poll("k2 cleared", lambda: reached(everyone, everyone, 0), deadline_s=DEADLINE_S)
        assert all(p["view"] == "raw" for p in (await pages(None)).values())
        assert (await client.get(f"{url}/exclusions")).json()["exclusions"] == []
        metrics = (await client.get(f"{pipeline.url('scoring')}/metrics")).text
        # Counted since the restart: the two clears, and the 4 + 7 respondents they put back.
        assert 'scoring_exclusion_decisions_total{decision="clear",outcome="applied"} 2.0' in metrics
        assert 'scoring_excluded_respondent_moves_total{direction="restored"} 11.0' in metrics
        assert "scoring_excluded_respondents 0.0" in metrics

"""Exactly-once emission of results on the real Kafka broker."""

import asyncio
import logging
import uuid

from deploy.local.infra import Infra
from services.publisher.kafka_io import ResultsEmitter
from shared.contracts import ResultsPublished
from shared.kafka import ensure_topics
from shared.topics import TOPICS
from tests.e2e.helpers import results_messages
from tests.publisher_builders import results_event


async def test_emitting_twice_or_from_two_replicas_at_once_commits_one_message(infra: Infra) -> None:
    await ensure_topics(infra.kafka_bootstrap, TOPICS)
    cid = f"c-{uuid.uuid4().hex[:10]}"
    replicas = [ResultsEmitter(infra.kafka_bootstrap, logging.getLogger(f"replica{n}")) for n in range(3)]

    async def attempt(emitter: ResultsEmitter, n: int) -> tuple[ResultsPublished, bool] | Exception:
        try:
            return await emitter.emit_once(results_event(cid, n))
        except Exception as error:  # a fenced replica fails; it will retry on its next round
            return error

    outcomes = await asyncio.gather(*(attempt(e, n) for n, e in enumerate(replicas)))
    messages = await results_messages(infra.kafka_bootstrap, cid)
    assert len(messages) == 1
    # Replicas retry until one of them has seen the committed results; all agree on them.
    for emitter in replicas:
        canonical, emitted = await emitter.emit_once(results_event(cid, 99))
        assert not emitted
        assert canonical.model_dump(mode="json") == messages[0]
    assert sum(1 for o in outcomes if isinstance(o, tuple) and o[1]) <= 1
    assert len(await results_messages(infra.kafka_bootstrap, cid)) == 1

"""Exactly-once emission of results on the real Kafka broker."""

import asyncio
import logging
import uuid
from datetime import timedelta

from deploy.local.infra import Infra
from services.publisher.domain import results_event_id
from services.publisher.kafka_io import ResultsEmitter
from shared.contracts import RankingMethod, ResultsPublished, utc_now
from shared.kafka import ensure_topics
from shared.topics import TOPICS
from tests.e2e.helpers import results_messages


def results_of(cid: str, respondents: int) -> ResultsPublished:
    now = utc_now()
    return ResultsPublished(
        event_id=results_event_id(cid),
        occurred_at=now,
        consultation_id=cid,
        title="t",
        opens_at=now - timedelta(days=1),
        closes_at=now,
        frozen_at=now,
        respondents=respondents,
        method=RankingMethod(weights={}, formula="f", tie_break="t"),
        open=[],
        improve=[],
        suggestions=[],
    )


async def test_emitting_twice_or_from_two_replicas_at_once_commits_one_message(infra: Infra) -> None:
    await ensure_topics(infra.kafka_bootstrap, TOPICS)
    cid = f"c-{uuid.uuid4().hex[:10]}"
    replicas = [ResultsEmitter(infra.kafka_bootstrap, logging.getLogger(f"replica{n}")) for n in range(3)]

    async def attempt(emitter: ResultsEmitter, n: int) -> tuple[ResultsPublished, bool] | Exception:
        try:
            return await emitter.emit_once(results_of(cid, n))
        except Exception as error:  # a fenced replica fails; it will retry on its next round
            return error

    outcomes = await asyncio.gather(*(attempt(e, n) for n, e in enumerate(replicas)))
    messages = await results_messages(infra.kafka_bootstrap, cid)
    assert len(messages) == 1
    # Replicas retry until one of them has seen the committed results; all agree on them.
    for emitter in replicas:
        canonical, emitted = await emitter.emit_once(results_of(cid, 99))
        assert not emitted
        assert canonical.model_dump(mode="json") == messages[0]
    assert sum(1 for o in outcomes if isinstance(o, tuple) and o[1]) <= 1
    assert len(await results_messages(infra.kafka_bootstrap, cid)) == 1

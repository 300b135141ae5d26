"""Ingest's group-commit producer on the real Kafka broker: a message past its deadline is never committed."""

import asyncio
import logging
import uuid

import pytest

from deploy.local.infra import Infra
from services.ingest.outbox import GroupCommitProducer, Unavailable
from shared.kafka import ensure_topics
from shared.topics import TopicSpec
from tests.e2e.helpers import poll, topic_messages


async def test_a_message_whose_deadline_passed_in_the_queue_is_refused_and_never_committed(infra: Infra) -> None:
    topic = f"test.outbox.{uuid.uuid4().hex[:10]}"
    await ensure_topics(infra.kafka_bootstrap, [TopicSpec(topic, partitions=1)])
    outbox = GroupCommitProducer(infra.kafka_bootstrap, f"cod-test-{topic}", 5.0, logging.getLogger("test"), lanes=1)
    await outbox.start()
    try:
        loop = asyncio.get_running_loop()
        with pytest.raises(Unavailable) as late:
            await outbox.send(topic, "k", b'{"n": 1}', deadline=loop.time())
        await outbox.send(topic, "k", b'{"n": 2}', deadline=loop.time() + 5.0)
    finally:
        await outbox.stop()
    assert late.value.may_be_recorded is False

    # The commit returns before the broker has written its markers: the message becomes readable (read
    # committed) a moment later. Anything committed before it would be readable by then too.
    async def committed() -> list[dict[str, object]]:
        return await topic_messages(infra.kafka_bootstrap, topic, lambda _: True)

    assert await poll("the second message readable", committed, deadline_s=15) == [{"n": 2}]

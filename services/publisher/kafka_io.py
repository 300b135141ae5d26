"""The publisher's Kafka side: pipeline progress (the watermark) and exactly-once emission.

Emission uses a Kafka transaction whose `transactional.id` is derived from the consultation.
Starting such a producer fences every earlier producer of the same id, aborting what it had not
committed; the new producer then reads the results topic (read_committed) and emits only if the
consultation's results are not there. Whichever replica or restart gets there, one message is
committed.
"""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.publisher.domain import Offsets
from shared.contracts import ResultsPublished
from shared.topics import MAX_MESSAGE_BYTES, RESULTS_PUBLISHED

SCAN_TIMEOUT_S = 60.0


class KafkaProgress:
    """End offsets of topics and committed offsets of consumer groups."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap

    async def end_offsets(self, topic: str) -> Offsets:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(list(consumer.assignment()))
            return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    async def committed(self, group: str, topic: str) -> Offsets:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0
        }


class ResultsEmitter:
    def __init__(self, bootstrap: str, logger: logging.Logger) -> None:
        self._bootstrap = bootstrap
        self._logger = logger

    async def emit_once(self, results: ResultsPublished) -> tuple[ResultsPublished, bool]:
        """The consultation's results as committed in Kafka, and whether this call emitted them."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            transactional_id=f"cod-publisher-results-{results.consultation_id}",
            max_request_size=MAX_MESSAGE_BYTES,
        )
        await producer.start()
        try:
            existing = await self.find(results.consultation_id)
            if existing is not None:
                return existing, False
            async with producer.transaction():
                await producer.send_and_wait(
                    RESULTS_PUBLISHED,
                    results.model_dump_json().encode(),
                    key=results.consultation_id.encode(),
                )
            return results, True
        finally:
            await producer.stop()

    async def find(self, consultation_id: str) -> ResultsPublished | None:
        """The committed results of a consultation in the results topic, if any."""
        consumer = AIOKafkaConsumer(
            RESULTS_PUBLISHED,
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )
        await consumer.start()
        try:
            partitions = list(consumer.assignment())
            end = await consumer.end_offsets(partitions)
            found = None
            async with asyncio.timeout(SCAN_TIMEOUT_S):
                for tp in partitions:
                    while await consumer.position(tp) < end[tp]:
                        batch = await consumer.getmany(tp, timeout_ms=1000)
                        for record in batch.get(tp, []):
                            if found is None and record.key == consultation_id.encode():
                                found = ResultsPublished.model_validate_json(record.value)
            return found
        finally:
            await consumer.stop()

"""The publisher's Kafka side: pipeline progress (the watermark), the archive followed as it is written,
scoring's tallies asked for and their replies followed, and exactly-once emission.

Emission uses a Kafka transaction whose `transactional.id` is derived from the consultation.
Starting such a producer fences every earlier producer of the same id, aborting what it had not
committed; the new producer then reads the results topic (read_committed) and emits only if the
consultation's results are not there. Whichever replica or restart gets there, one message is
committed.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from services.publisher.domain import Offsets
from services.publisher.ledger import Ledger, Record
from services.publisher.tallies import TallyClient
from shared.contracts import RankingsTallied, ResultsPublished, TallyRequested
from shared.kafka import committed_offsets, log_reader
from shared.topics import EXCLUSIONS, MAX_MESSAGE_BYTES, RESPONSES_ENRICHED, RESULTS_PUBLISHED, TALLIES, TALLY_REQUESTS

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
        offsets = await committed_offsets(self._bootstrap, group)
        return {(t, partition): offset for (t, partition), offset in offsets.items() if t == topic}


class LogFollower:
    """Reads the enriched responses and staff's exclusion decisions from the beginning (committed data
    only), then follows them, folding every record into the ledger. No consumer group: every replica
    holds its whole archive, as it holds its state views. The closer waits for the ledger to reach its
    watermark; readiness does not wait for it, since rebuilding a large archive takes minutes."""

    def __init__(
        self,
        bootstrap: str,
        ledger: Ledger,
        registry: CollectorRegistry,
        logger: logging.Logger,
        consultations_synced: Callable[[], Awaitable[None]],
    ) -> None:
        self._bootstrap = bootstrap
        self.ledger = ledger
        self._consultations_synced = consultations_synced
        self._logger = logger
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._folded = Counter(
            "publisher_archive_records_total",
            "Records the publisher folded into its archive, by outcome.",
            ["outcome"],
            registry=registry,
        )

    async def start(self) -> None:
        consumer = log_reader(self._bootstrap, RESPONSES_ENRICHED, EXCLUSIONS)
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer), name="archive-follower")

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._fold_next(consumer)
            except Exception:  # a broker outage: aiokafka reconnects; the closer waits meanwhile
                self._logger.exception("following the archive's topics failed; retrying")
                await asyncio.sleep(1.0)

    async def _fold_next(self, consumer: AIOKafkaConsumer) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        records = [Record(r.topic, r.partition, r.offset, r.key, r.value) for rs in batches.values() for r in rs]
        # As scoring does: an early close committed before these responses is in the view when they are
        # folded, so a response received after it is dropped here too. Retried in place: the consumer has
        # moved past these records, which must not be dropped.
        while records:
            try:
                await self._consultations_synced()
                break
            except Exception:
                self._logger.exception("catching the consultations view up failed; retrying")
                await asyncio.sleep(1.0)
        folded = self.ledger.fold(records)
        # The position passes transaction markers and aborted records, which no record shows.
        for tp in consumer.assignment():
            self.ledger.advance(tp.topic, tp.partition, await consumer.position(tp))
        self._folded.labels("response").inc(folded.responses)
        self._folded.labels("after_close").inc(folded.late)
        self._folded.labels("decision").inc(folded.decisions)
        self._folded.labels("invalid").inc(len(folded.invalid))
        for problem in folded.invalid:
            self._logger.warning("unreadable record left out of the archive", extra={"record": problem})

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()


class TallyChannel:
    """Scoring's tallies over Kafka for `client` (the closer's `Rankings` port): sends its requests, and
    follows the replies' topic (no consumer group) from its end offsets, sought at start: every reply to a
    request sent after `start` lies past them, so none is missed, and none older is read. Each reply goes
    to the client, which keeps those it waits for."""

    def __init__(self, bootstrap: str, timeout_s: float, logger: logging.Logger) -> None:
        self._bootstrap = bootstrap
        self.client = TallyClient(self.send, timeout_s)
        self._logger = logger
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = log_reader(self._bootstrap, TALLIES, start="latest", max_partition_fetch_bytes=MAX_MESSAGE_BYTES)
        await consumer.start()
        self._consumer = consumer
        partitions = list(consumer.assignment())
        if not partitions:
            raise RuntimeError(f"topic {TALLIES} does not exist")
        for tp, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(tp, offset)
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        self._producer = producer
        self._task = asyncio.create_task(self._follow(consumer), name="tally-follower")

    async def send(self, request: TallyRequested) -> None:
        if self._producer is None:
            raise RuntimeError("the tally channel is not started")
        await self._producer.send_and_wait(
            TALLY_REQUESTS, request.model_dump_json().encode(), key=request.consultation_id.encode()
        )

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500)
            except Exception:  # a broker outage: aiokafka reconnects; a close waiting meanwhile times out
                self._logger.exception("following the tallies failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for record in (r for records in batches.values() for r in records):
                try:
                    reply = RankingsTallied.model_validate_json(record.value or b"")
                except ValidationError as error:
                    problem = {"offset": record.offset, "error": str(error)}
                    self._logger.warning("unreadable tally ignored", extra=problem)
                    continue
                self.client.received(reply)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer:
            await self._producer.stop()
        if self._consumer:
            await self._consumer.stop()


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
        consumer = log_reader(self._bootstrap, RESULTS_PUBLISHED, max_partition_fetch_bytes=MAX_MESSAGE_BYTES)
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

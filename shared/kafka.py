"""Kafka plumbing: the broker factory, topic creation, compacted-topic views, dead letters."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, Literal, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError

from shared.contracts import MessageDeadLettered, utc_now
from shared.service import retry_until
from shared.settings import ServiceSettings
from shared.topics import MAX_MESSAGE_BYTES, TopicSpec, topic_specs

Model = TypeVar("Model", bound=BaseModel)
Result = TypeVar("Result")
Compression = Literal["gzip", "snappy", "lz4", "zstd"]
RETRY_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
# How long a batch subscriber's poll waits for records; FastStream also sleeps this long after an
# empty poll, so it bounds the delay a record arriving on an idle topic waits (FastStream's is 200 ms).
BATCH_POLL_MS = 20


def make_broker(
    settings: ServiceSettings,
    registry: CollectorRegistry,
    service: str,
    request_timeout_ms: int = 40_000,
    compression_type: Compression | None = None,
    max_request_size: int = MAX_MESSAGE_BYTES,
) -> KafkaBroker:
    """A broker whose publishes return only once every in-sync replica has the message; `max_request_size`
    bounds a message before compression."""
    client_id = f"{service}-{settings.instance}" if settings.instance else service
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=request_timeout_ms,
        compression_type=compression_type,
        max_request_size=max_request_size,
        middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name=service)],
        logger=logging.getLogger(f"{service}.broker"),
        graceful_timeout=15.0,
    )


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that are missing, with their partitions and configs; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created = []
        for spec in missing:
            topic = NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.kafka_configs())
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics([topic])
                for _, code, message in getattr(response, "topic_errors", []):
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise RuntimeError(f"cannot create topic {spec.name}: {code} {message}")
                created.append(spec.name)
        return created
    finally:
        await admin.close()


async def prepare_topics(settings: ServiceSettings, logger: logging.Logger) -> None:
    """At start-up, create the missing topics when the service is allowed to."""
    if settings.kafka_create_topics:
        await retry_until(
            "create topics",
            lambda: ensure_topics(settings.kafka_bootstrap, topic_specs(settings.response_retention_days)),
            settings.startup_timeout_s,
            logger,
        )


async def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """The offsets a consumer group has committed, by (topic, partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


BatchHandler = Callable[[Any], Awaitable[None]]


def batch_subscriber(
    router: KafkaRouter, topic: str, group_id: str, max_records: int
) -> Callable[[BatchHandler], object]:
    """A consumer-group batch subscriber handing raw records to its handler. Offsets are committed
    after the handler returns; on an exception the batch is sought back and redelivered."""
    subscriber: Callable[[BatchHandler], object] = router.subscriber(
        topic,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=BATCH_POLL_MS,
        auto_offset_reset="earliest",
        # Ingest writes in transactions: what it aborted must never be consumed.
        isolation_level="read_committed",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=keep_records,
    )
    return subscriber


async def retry_in_place(
    action: Callable[[], Awaitable[Result]],
    stopping: asyncio.Event,
    logger: logging.Logger,
    on_retry: Callable[[], None] = lambda: None,
) -> Result:
    """Run a batch's `action` until it succeeds, backing off between attempts. A batch handler never
    fails a batch back to the broker: that would seek the consumer back (the partitions may have moved in
    a rebalance meanwhile), and a stall of the whole consumer followed exactly such a seek under SIGKILL
    faults. A batch that cannot be stored holds its partitions: the lag shows it, nothing is skipped.
    When the service is stopping, the batch is given up uncommitted, for the next owner of its partitions."""
    attempt = 0
    while True:
        try:
            return await action()
        except Exception as error:  # every failure is retried; cancellation still stops
            if stopping.is_set():
                raise
            delay = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
            attempt += 1
            on_retry()
            logger.warning(
                "batch not stored; retrying",
                extra={"attempt": attempt, "retry_in_s": delay, "error": f"{type(error).__name__}: {error}"[:500]},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)


def record_key(record: ConsumerRecord[bytes, bytes]) -> str | None:
    return record.key.decode("utf-8", "replace") if record.key is not None else None


def dead_letter(service: str, record: ConsumerRecord[bytes, bytes], reason: str) -> MessageDeadLettered:
    """The dead-letter event for a record a consumer cannot process."""
    return MessageDeadLettered(
        event_id=str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"dlq:{service}:{record.topic}:{record.partition}:{record.offset}")
        ),
        occurred_at=utc_now(),
        service=service,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record_key(record),
        payload=(record.value or b"").decode("utf-8", "replace"),
        reason=reason[:2000],
    )


def log_reader(
    bootstrap: str, *topics: str, start: Literal["earliest", "latest"] = "earliest", **options: Any
) -> AIOKafkaConsumer:
    """A consumer of committed records with no group, so every process reads the whole log for itself
    (from its start, or from its end with `start="latest"`): the state views, the publisher's archive,
    its tally replies and its results scan."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset=start,
        isolation_level="read_committed",
        **options,
    )


class StateView(Generic[Model]):
    """An in-memory table of a compacted topic, read from the beginning and then followed.

    Every replica of every service that needs the state holds its own view, so none keeps state
    that only it can see. `ready` is set once the view has caught up with the topic's end as it
    was at start; a tombstone (null value) removes the key.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        model: type[Model],
        logger: logging.Logger,
        on_change: Callable[[str, Model | None], None] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._model = model
        self._logger = logger
        self._on_change = on_change
        self.items: dict[str, Model] = {}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_sync: asyncio.Future[None] | None = None
        self._syncing: asyncio.Task[None] | None = None
        self._offsets: AIOKafkaConsumer | None = None

    def get(self, key: str) -> Model | None:
        return self.items.get(key)

    def put(self, key: str, value: Model) -> None:
        """Apply a value this process has just published, before it comes back from the topic."""
        self.items[key] = value
        if self._on_change:
            self._on_change(key, value)

    async def start(self) -> None:
        consumer = log_reader(self._bootstrap, self._topic)
        await consumer.start()
        partitions = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not partitions:
            await consumer.stop()
            raise RuntimeError(f"topic {self._topic} does not exist")
        self._consumer = consumer
        end = await consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._follow(consumer, end), name=f"view:{self._topic}")

    async def _follow(self, consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                for record in records:
                    self._apply(record)
            if not self.ready.is_set() and all(
                await asyncio.gather(*(self._reached(consumer, tp, offset) for tp, offset in end.items()))
            ):
                self.ready.set()
                self._logger.info("state view caught up", extra={"topic": self._topic, "items": len(self.items)})

    async def sync(self) -> None:
        """Return once the view has applied everything committed to the topic before this call.

        Concurrent callers share one round: a round reads the end offsets only after every caller
        that joined it had called, so one list-offsets request serves a whole group commit."""
        if self._next_sync is None:
            self._next_sync = asyncio.get_running_loop().create_future()
        joined = self._next_sync
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self._sync_rounds(), name=f"view-sync:{self._topic}")
        await asyncio.shield(joined)

    async def _sync_rounds(self) -> None:
        while self._next_sync is not None:
            round_, self._next_sync = self._next_sync, None
            try:
                await self._catch_up()
            except Exception as error:
                round_.set_exception(error)
            else:
                round_.set_result(None)
            # Nobody may be left waiting on this round, so its exception is retrieved here.
            with contextlib.suppress(Exception):
                round_.exception()

    async def _catch_up(self) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"view of {self._topic} not started")
        if self._offsets is None:
            # A client of its own: on the follower's connection, the request would queue behind its long-poll fetch.
            offsets = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, enable_auto_commit=False, isolation_level="read_committed"
            )
            await offsets.start()
            self._offsets = offsets
        # read_committed: the end offsets are the last stable ones, past every committed transaction.
        end = await self._offsets.end_offsets(sorted(consumer.assignment(), key=lambda tp: tp.partition))
        # Polling the follower's position: the fetcher moves it past transaction markers inside `getmany`,
        # which returns nothing for them, so the follower has no event to signal.
        while not all(  # noqa: ASYNC110
            await asyncio.gather(*(self._reached(consumer, tp, offset) for tp, offset in end.items()))
        ):
            await asyncio.sleep(0.005)

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> bool:
        return bool(await consumer.position(tp) >= offset)

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        key = record_key(record)
        if key is None:
            self._logger.warning("state message without key ignored", extra={"topic": self._topic})
            return
        if record.value is None:
            self.items.pop(key, None)
            if self._on_change:
                self._on_change(key, None)
            return
        try:
            value = self._model.model_validate_json(record.value)
        except ValidationError as error:
            self._logger.warning(
                "invalid state message ignored", extra={"topic": self._topic, "key": key, "error": str(error)}
            )
            return
        self.put(key, value)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._syncing:
            self._syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncing
        if self._offsets:
            await self._offsets.stop()
        if self._consumer:
            await self._consumer.stop()


class EventPublisher(Protocol):
    """Where handlers send events: a port, so unit tests can hand in a fake."""

    async def publish(self, topic: str, events: Sequence[tuple[str | None, BaseModel]]) -> None: ...


class BrokerPublisher:
    """Publishes a batch of events concurrently and returns once Kafka has them all (acks=all)."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, topic: str, events: Sequence[tuple[str | None, BaseModel]]) -> None:
        pending = [
            await self._broker.publish(event, topic, key=key.encode() if key else None, no_confirm=True)
            for key, event in events
        ]
        await asyncio.gather(*pending)


async def keep_records(message: KafkaMessage) -> Any:
    """Decoder handing a batch handler its raw records, so it decodes (or dead-letters) each one."""
    raw = message.raw_message
    # aiokafka hands a batch as a tuple, FastStream's TestKafkaBroker as a list.
    return list(raw) if isinstance(raw, tuple | list) else [raw]

"""Ingest's Kafka producer: group commits in Kafka transactions, so a 503 is never followed by a delivery.

A plain producer that times out keeps the message in its buffer and delivers it once Kafka is back:
the respondent was told "not recorded" and the response counts anyway. Here every message is written
inside a Kafka transaction shared by the requests of a few milliseconds; the requests are answered
only once the transaction is committed, and consumers read committed data only. When a commit fails
or times out, its requests get an error, the producer is replaced, and the new one, sharing the
transactional id, fences the old one and has its open transaction aborted: what it had written never
becomes visible.

Every transaction costs the broker about the same whatever its size (transaction-log writes and a
marker per partition written), so the lanes begin them in turn, at most one per `commit_interval_s`
(10 ms by default): under load each carries what arrived meanwhile. A lane's next transaction also
meets `CONCURRENT_TRANSACTIONS` until the broker has written its previous one's markers; with the
lanes taking turns that is rare, and aiokafka's fixed 20 ms retry then, holding the requests the lane
took, is set to `concurrent_retry_s` (2 ms by default) on aiokafka's sender when the producer starts.

One narrow case remains, common to any acknowledgement over a network: Kafka commits and the
acknowledgement is lost (the commit was requested, then timed out). `Unavailable.may_be_recorded` says
so; the client then retries with the same response id and is counted once.

Each message may carry a deadline (event-loop time): past it, a message still queued is dropped, and a
batch whose earliest deadline passes before its commit is requested is aborted, never committed.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.producer import sender as aiokafka_sender
from pydantic import BaseModel

from shared.topics import MAX_MESSAGE_BYTES

# Transactions begin at most this often (all lanes together): each costs the broker a transaction-log
# round and a marker per partition, whatever its size, so under load they carry more requests each.
COMMIT_INTERVAL_S = 0.01
# The retry aiokafka's sender waits after `CONCURRENT_TRANSACTIONS` on a new transaction (its own is 20 ms).
CONCURRENT_RETRY_S = 0.002


def retry_concurrent_transactions_after(seconds: float) -> None:
    """Set the retry of a transaction that meets the previous one's markers still being written; a
    module constant of aiokafka's sender, read at each retry (tests/unit/test_outbox.py checks it)."""
    aiokafka_sender.BACKOFF_OVERRIDE = seconds


class Unavailable(Exception):
    """Kafka did not commit the message in time. Nothing was recorded, unless `may_be_recorded`: the
    failure came after the commit was requested, and Kafka may have committed it all the same."""

    def __init__(self, reason: str = "", *, may_be_recorded: bool = False, response_id: str | None = None) -> None:
        super().__init__(reason)
        self.may_be_recorded = may_be_recorded
        self.response_id = response_id


@dataclass(eq=False)
class _Pending:
    topic: str
    key: bytes
    value: bytes | None
    done: asyncio.Future[None]
    deadline: float


class GroupCommitProducer:
    """Concurrent requests share transactions; `lanes` producers commit in turn, since a producer
    must wait for its previous transaction's markers before it can begin the next one."""

    def __init__(
        self,
        bootstrap: str,
        transactional_id: str,
        timeout_s: float,
        logger: logging.Logger,
        lanes: int = 4,
        max_batch: int = 500,
        concurrent_retry_s: float = CONCURRENT_RETRY_S,
        commit_interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        self._bootstrap = bootstrap
        self._transactional_id = transactional_id
        self._timeout_s = timeout_s
        self._logger = logger
        self._max_batch = max_batch
        self._concurrent_retry_s = concurrent_retry_s
        self._commit_interval_s = commit_interval_s
        self._turn = asyncio.Lock()
        self._next_turn = 0.0
        self._producers: list[AIOKafkaProducer | None] = [None] * lanes
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _new_producer(self, lane: int) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            transactional_id=f"{self._transactional_id}-{lane}",
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(self._timeout_s * 1000),
            retry_backoff_ms=10,
            # The broker aborts a transaction left open this long by a producer that died.
            transaction_timeout_ms=max(int(self._timeout_s * 4000), 10_000),
            max_request_size=MAX_MESSAGE_BYTES,
        )

    async def start(self) -> None:
        """Connect every lane and initialise its transactional id (fencing any earlier holder)."""
        retry_concurrent_transactions_after(self._concurrent_retry_s)
        for lane in range(len(self._producers)):
            if self._producers[lane] is None:
                producer = self._new_producer(lane)
                try:
                    await producer.start()
                except BaseException:
                    await self._discard(producer)
                    raise
                self._producers[lane] = producer
        self._tasks = [
            asyncio.create_task(self._commit_loop(lane), name=f"group-commit-{lane}")
            for lane in range(len(self._producers))
        ]

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        live = self._live()
        if self._queue and live:
            with contextlib.suppress(Exception):
                await self._commit(live[0], self._take())
        for producer in live:
            await self._discard(producer)

    def _live(self) -> list[AIOKafkaProducer]:
        return [p for p in self._producers if p is not None]

    async def ready(self) -> bool:
        """Whether a lane has a producer and Kafka answers it now."""
        for producer in self._live():
            try:
                async with asyncio.timeout(2.0):
                    await producer.client.fetch_all_metadata()
            except Exception:
                return False
            return True
        return False

    async def send_event(self, topic: str, key: str, event: BaseModel, deadline: float | None = None) -> None:
        """Return once the event is committed (acks=all); raise `Unavailable` if it is not by `deadline`."""
        await self.send(topic, key, event.model_dump_json().encode(), deadline)

    async def send(self, topic: str, key: str, value: bytes | None, deadline: float | None = None) -> None:
        """Return once the message is committed in Kafka; raise `Unavailable` if it is not by `deadline`
        (event-loop time; by default the produce timeout from now). A `None` value is a tombstone."""
        if not self._live():
            raise Unavailable("no connection to Kafka")
        loop = asyncio.get_running_loop()
        deadline = (
            min(deadline, loop.time() + self._timeout_s) if deadline is not None else loop.time() + self._timeout_s
        )
        pending = _Pending(topic, key.encode(), value, loop.create_future(), deadline)
        self._queue.append(pending)
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(pending.done), max(0.0, deadline - loop.time()))
        except TimeoutError:
            if pending in self._queue:
                self._queue.remove(pending)
                raise Unavailable("deadline passed in the queue") from None
            await pending.done  # taken into a batch, which is bound by this deadline too

    def _take(self) -> list[_Pending]:
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        if not self._queue:
            self._wake.clear()
        return batch

    async def _commit_loop(self, lane: int) -> None:
        while True:
            await self._wake.wait()
            producer = self._producers[lane]
            if producer is None:
                await self._replace(lane)
                continue
            await self._wait_turn()
            batch = self._take()
            if not batch:
                continue
            try:
                await self._commit(producer, batch)
            except Unavailable as error:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(Unavailable(str(error), may_be_recorded=error.may_be_recorded))
                self._logger.warning("group commit failed; replacing the producer", extra={"error": repr(error)})
                await self._replace(lane)
            else:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_result(None)

    async def _wait_turn(self) -> None:
        """Lanes begin transactions in turn, `commit_interval_s` apart: a lane's previous markers are then
        usually written when it begins again, and what arrived meanwhile shares one transaction."""
        async with self._turn:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._next_turn - loop.time()))
            self._next_turn = loop.time() + self._commit_interval_s

    async def _commit(self, producer: AIOKafkaProducer, batch: list[_Pending]) -> None:
        now = asyncio.get_running_loop().time()
        for pending in batch:
            if pending.deadline <= now and not pending.done.done():
                pending.done.set_exception(Unavailable("deadline passed in the queue"))
        batch = [p for p in batch if not p.done.done()]
        if not batch:
            return
        requested = False
        try:
            async with asyncio.timeout_at(min(p.deadline for p in batch)):
                await producer.begin_transaction()
                sent = [await producer.send(p.topic, p.value, key=p.key) for p in batch]
                await asyncio.gather(*sent)
                requested = True
                await producer.commit_transaction()
        except Exception as error:
            raise Unavailable(repr(error), may_be_recorded=requested) from error

    async def _replace(self, lane: int) -> None:
        """Drop the lane's failed producer; until a new one has fenced it, the lane commits nothing."""
        old, self._producers[lane] = self._producers[lane], None
        if old is not None:
            await self._discard(old)
        if not self._live():
            for pending in self._take() + self._queue:
                if not pending.done.done():
                    pending.done.set_exception(Unavailable("Kafka unavailable"))
            self._queue = []
        delay = 0.2
        while self._producers[lane] is None:
            producer = self._new_producer(lane)
            try:
                await producer.start()
            except Exception as error:
                await self._discard(producer)
                self._logger.warning("Kafka still unavailable", extra={"error": repr(error), "retry_in_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self._producers[lane] = producer

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        # Its buffered messages must not be flushed: they belong to an aborted transaction.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await producer.stop()

"""Scoring's side of the close's cross-check: the publisher asks for the tallies of a closed consultation;
scoring replies once its consumer group has committed up to the request's watermark, with every ranking
whole and filtered, read as its API reads them. A request it cannot answer in time gets no reply: the
publisher's close times out and asks again; a request delivered twice is answered twice, harmlessly."""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from services.scoring.rankings import UnknownConsultation
from services.scoring.settings import ScoringSettings
from shared.contracts import Position, RankingKind, RankingPage, RankingsTallied, TallyRequested, utc_now
from shared.kafka import EventPublisher, dead_letter, keep_records, record_key
from shared.topics import DEAD_LETTERS, TALLIES, TALLY_REQUESTS

__all__ = ["TallyReplier", "tally_router", "watermark_reached"]

SERVICE = "scoring"
Committed = Mapping[tuple[str, int], int]


def watermark_reached(watermark: Committed, committed: Committed) -> bool:
    """Whether the group has committed at least up to the watermark on every partition (an empty one waits
    for nothing)."""
    return all(committed.get(partition, 0) >= offset for partition, offset in watermark.items() if offset > 0)


class TallyReplier:
    """Answers tally requests: waits for the watermark (polling the group's committed offsets: there is no
    event to wait on), then reads the tallies and publishes them."""

    def __init__(
        self,
        tallies: Callable[[str], Awaitable[dict[RankingKind, RankingPage]]],
        committed: Callable[[], Awaitable[Committed]],
        publisher: EventPublisher,
        registry: CollectorRegistry,
        logger: logging.Logger,
        stopping: asyncio.Event,
        max_wait_s: float,
        poll_s: float = 0.1,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._tallies, self._committed, self._publisher = tallies, committed, publisher
        self._logger, self._stopping = logger, stopping
        self._max_wait_s, self._poll_s, self._clock = max_wait_s, poll_s, clock
        self._requests = Counter(
            "scoring_tally_requests_total",
            "Tally requests of the publisher, by outcome (replied; expired: the watermark was not committed "
            "in time; unknown: no such consultation; failed: the tallies could not be read; invalid).",
            ["outcome"],
            registry=registry,
        )

    async def _wait(self, request: TallyRequested) -> Committed | None:
        """The group's committed offsets once they reach the watermark; None past the request's expiry."""
        watermark = {(p.topic, p.partition): p.offset for p in request.watermark}
        give_up = time.monotonic() + self._max_wait_s
        while True:
            # An expired request is not answered: its close has stopped waiting (and asks again).
            if self._clock() >= request.expires_at or time.monotonic() >= give_up or self._stopping.is_set():
                return None
            committed = await self._committed()
            if watermark_reached(watermark, committed):
                return committed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_s)

    async def answer(self, request: TallyRequested) -> RankingsTallied | None:
        """The reply published, if any."""
        cid = request.consultation_id
        committed = await self._wait(request)
        if committed is None:
            self._requests.labels("expired").inc()
            self._logger.warning(
                "tally request expired before the watermark was committed; not answered",
                extra={"consultation_id": cid, "request_id": request.event_id},
            )
            return None
        try:
            pages = await self._tallies(cid)
        except UnknownConsultation:
            self._requests.labels("unknown").inc()
            self._logger.warning("tally requested for an unknown consultation", extra={"consultation_id": cid})
            return None
        topics = {p.topic for p in request.watermark}
        reply = RankingsTallied(
            event_id=str(uuid.uuid4()),
            occurred_at=self._clock(),
            request_id=request.event_id,
            consultation_id=cid,
            committed=[
                Position(topic=topic, partition=partition, offset=offset)
                for (topic, partition), offset in sorted(committed.items())
                if topic in topics
            ],
            pages=pages,
        )
        await self._publisher.publish(TALLIES, [(cid, reply)])
        self._requests.labels("replied").inc()
        self._logger.info(
            "tallies sent",
            extra={"consultation_id": cid, "request_id": request.event_id}
            | {f"{kind.value}_rows": page.total for kind, page in pages.items()},
        )
        return reply

    async def handle(self, records: Any) -> None:
        """Decode each request (an unreadable one is dead-lettered) and answer it; a failure is logged, never
        redelivered: the publisher asks again."""
        for record in records:
            try:
                request = TallyRequested.model_validate_json(record.value or b"")
            except ValidationError as error:
                self._requests.labels("invalid").inc()
                dead = dead_letter(SERVICE, record, f"not a {TallyRequested.__name__}: {error}")
                await self._publisher.publish(DEAD_LETTERS, [(record_key(record), dead)])
                continue
            try:
                await self.answer(request)
            except Exception:
                self._requests.labels("failed").inc()
                self._logger.exception("tally request not answered", extra={"request_id": request.event_id})


def tally_router(settings: ScoringSettings, replier: TallyReplier) -> KafkaRouter:
    """The tally requests, in scoring's consumer group: one replica answers each. Committed once handled,
    answered or not; a request scoring never read (it was down) is read at its start and answered if it
    has not expired."""
    router = KafkaRouter()
    router.subscriber(
        TALLY_REQUESTS,
        group_id=settings.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,
        decoder=keep_records,
    )(replier.handle)
    return router

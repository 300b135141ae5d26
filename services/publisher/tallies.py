"""Scoring's tallies, asked for over Kafka at the close: a request with a fresh id and the close's
watermark, then the reply carrying that id. Replies to other requests (another replica's, an earlier
attempt's, a duplicate) are ignored; no reply in time raises, and the close retries with its back-off."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from services.publisher.domain import Offsets, caught_up
from shared.contracts import Position, RankingKind, RankingPage, RankingsTallied, TallyRequested, utc_now

__all__ = ["TalliesUnanswered", "TallyClient"]


class TalliesUnanswered(Exception):
    """Scoring sent no usable reply to a tally request in time."""


class TallyClient:
    """The closer's `Rankings` port over Kafka: `send` publishes a request; whatever follows the replies'
    topic hands each reply to `received`."""

    def __init__(
        self,
        send: Callable[[TallyRequested], Awaitable[None]],
        timeout_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._send = send
        self._timeout_s = timeout_s
        self._clock = clock
        self._pending: dict[str, asyncio.Future[RankingsTallied]] = {}

    def received(self, reply: RankingsTallied) -> None:
        """A reply read from the topic: it completes the request of the same id, if this process is waiting."""
        waiting = self._pending.get(reply.request_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)

    async def pages(self, consultation_id: str, watermark: Offsets) -> dict[RankingKind, RankingPage]:
        """Every ranking whole and filtered, as scoring tallied it once its group had committed `watermark`."""
        now = self._clock()
        request = TallyRequested(
            event_id=str(uuid.uuid4()),
            occurred_at=now,
            consultation_id=consultation_id,
            watermark=[Position(topic=t, partition=p, offset=o) for (t, p), o in sorted(watermark.items())],
            expires_at=now + timedelta(seconds=self._timeout_s),
        )
        waiting = asyncio.get_running_loop().create_future()
        self._pending[request.event_id] = waiting
        try:
            await self._send(request)
            async with asyncio.timeout(self._timeout_s):
                reply = await waiting
        except TimeoutError:
            raise TalliesUnanswered(
                f"{consultation_id}: no tallies from scoring within {self._timeout_s:g} s (request {request.event_id})"
            ) from None
        finally:
            self._pending.pop(request.event_id, None)
        committed = {(p.topic, p.partition): p.offset for p in reply.committed}
        if reply.consultation_id != consultation_id or not caught_up(watermark, committed):
            raise TalliesUnanswered(f"{consultation_id}: scoring's reply does not answer request {request.event_id}")
        if missing := set(RankingKind) - set(reply.pages):
            raise TalliesUnanswered(f"{consultation_id}: scoring's reply lacks {sorted(k.value for k in missing)}")
        return dict(reply.pages)

"""The close's cross-check over Kafka, through FastStream's `TestKafkaBroker`: scoring answers a tally
request only once its group has committed up to the request's watermark, with every ranking whole and
filtered as its read side serves it; the publisher's client keeps the reply to its own request, ignores
the others, and gives up in time."""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.publisher.tallies import TalliesUnanswered, TallyClient
from services.scoring.domain import DEFAULT_WEIGHTS
from services.scoring.handlers import SERVICE, ScoringMetrics, build_router
from services.scoring.intervals import LiveIntervals
from services.scoring.rankings import LiveRankings
from services.scoring.settings import ScoringSettings
from services.scoring.tallies import TallyReplier, tally_router
from shared.contracts import (
    MessageDeadLettered,
    Position,
    Priority,
    RankingKind,
    RankingMethod,
    RankingPage,
    RankingsTallied,
    RankingView,
    TallyRequested,
    utc_now,
)
from shared.kafka import make_broker
from shared.topics import DEAD_LETTERS, EXCLUSIONS, RESPONSES_ENRICHED, TALLIES, TALLY_REQUESTS
from tests.service.builders import CONSULTATION, decision, deliver, enriched
from tests.service.fakes import InMemoryScoringRepository, RecordingPublisher

WATERMARK = {(RESPONSES_ENRICHED, 0): 3, (RESPONSES_ENRICHED, 1): 2, (EXCLUSIONS, 0): 1}


@dataclass
class GroupProgress:
    """Scoring's group's committed offsets, as the admin client reads them; `polled` is set at each read."""

    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    polled: asyncio.Event = field(default_factory=asyncio.Event)
    reads: int = 0

    async def __call__(self) -> Mapping[tuple[str, int], int]:
        self.reads += 1
        self.polled.set()
        return dict(self.committed)


@dataclass
class Scoring:
    broker: KafkaBroker
    progress: GroupProgress
    publisher: RecordingPublisher
    live: LiveRankings
    registry: CollectorRegistry

    def tallies(self) -> list[RankingsTallied]:
        return self.publisher.events(TALLIES, RankingsTallied)

    def outcome(self, outcome: str) -> float:
        return self.registry.get_sample_value("scoring_tally_requests_total", {"outcome": outcome}) or 0.0


def request(watermark: Mapping[tuple[str, int], int] = WATERMARK, expires_in_s: float = 30) -> TallyRequested:
    now = utc_now()
    return TallyRequested(
        event_id=f"request-{now.timestamp()}",
        occurred_at=now,
        consultation_id="c1",
        watermark=[Position(topic=t, partition=p, offset=o) for (t, p), o in sorted(watermark.items())],
        expires_at=now + timedelta(seconds=expires_in_s),
    )


@pytest.fixture
async def scoring() -> AsyncIterator[Scoring]:
    settings, registry = ScoringSettings(), CollectorRegistry()
    repository, publisher, progress = InMemoryScoringRepository(), RecordingPublisher(), GroupProgress()
    consultations = {"c1": CONSULTATION}
    live = LiveRankings(
        repository, consultations.get, lambda _: None, LiveIntervals(repository, DEFAULT_WEIGHTS, 1), DEFAULT_WEIGHTS
    )
    stopping = asyncio.Event()
    replier = TallyReplier(
        live.tallies, progress, publisher, registry, logging.getLogger("test.tallies"), stopping, 5.0, poll_s=0.01
    )
    broker = make_broker(settings, registry, SERVICE)
    broker.include_router(
        build_router(settings, repository, publisher, consultations.get, ScoringMetrics(registry), stopping)
    )
    broker.include_router(tally_router(settings, replier))
    async with TestKafkaBroker(broker) as test_broker:
        await deliver(
            test_broker,
            RESPONSES_ENRICHED,
            enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}, suggestions=["Registre des orgues"]),
            enriched("r2", "p2", 2, opens={"d-organs": Priority.USEFUL, "d-museums": Priority.IMPORTANT}),
            enriched("r3", "p3", 3, opens={"d-museums": Priority.ESSENTIAL}, suggestions=["Registre des orgues"]),
        )
        await deliver(test_broker, EXCLUSIONS, decision("burst", ["p3"]))
        yield Scoring(test_broker, progress, publisher, live, registry)


async def test_scoring_replies_only_once_its_group_has_committed_up_to_the_watermark(scoring: Scoring) -> None:
    scoring.progress.committed = {(RESPONSES_ENRICHED, 0): 3, (RESPONSES_ENRICHED, 1): 1, (EXCLUSIONS, 0): 1}
    asked = request()
    answering = asyncio.create_task(scoring.broker.publish(asked, TALLY_REQUESTS, key=b"c1"))
    for _ in range(3):  # several reads of the group's progress, none at the watermark
        scoring.progress.polled.clear()
        await asyncio.wait_for(scoring.progress.polled.wait(), 5)
    assert scoring.tallies() == []
    scoring.progress.committed[(RESPONSES_ENRICHED, 1)] = 2
    scoring.progress.committed[("another.topic", 0)] = 7  # the group's other topics are not reported
    await asyncio.wait_for(answering, 5)
    [reply] = scoring.tallies()
    assert (reply.request_id, reply.consultation_id) == (asked.event_id, "c1")
    assert {(p.topic, p.partition): p.offset for p in reply.committed} == WATERMARK
    assert scoring.outcome("replied") == 1


async def test_the_reply_carries_every_ranking_whole_filtered_and_without_intervals(scoring: Scoring) -> None:
    scoring.progress.committed = dict(WATERMARK)
    await scoring.broker.publish(request(), TALLY_REQUESTS, key=b"c1")
    [reply] = scoring.tallies()
    assert set(reply.pages) == set(RankingKind)
    for kind, page in reply.pages.items():
        served, _ = await scoring.live.page("c1", kind, None, 10_000, 0, RankingView.FILTERED, intervals=False)
        assert page == served.model_copy(update={"limit": served.total})
        assert (page.view, page.excluded_respondents, page.offset) == (RankingView.FILTERED, 1, 0)
        assert page.limit == page.total == len(page.items)
        assert all(row.rank_interval is None for row in page.items)
    # p3 (essential on d-museums) is set aside: 2 for p2's "important" only; d-organs 3 + 1.
    assert {row.key: row.score for row in reply.pages[RankingKind.OPEN].items} == {"d-organs": 4, "d-museums": 2}
    assert [row.respondents for row in reply.pages[RankingKind.SUGGESTIONS].items] == [1]


async def test_a_request_whose_watermark_is_not_reached_before_it_expires_gets_no_reply(scoring: Scoring) -> None:
    scoring.progress.committed = {(RESPONSES_ENRICHED, 0): 1}
    await asyncio.wait_for(scoring.broker.publish(request(expires_in_s=0.05), TALLY_REQUESTS, key=b"c1"), 5)
    assert scoring.tallies() == []
    assert scoring.progress.reads >= 1
    assert scoring.outcome("expired") == 1


async def test_an_expired_request_read_late_is_not_answered_even_at_the_watermark(scoring: Scoring) -> None:
    scoring.progress.committed = dict(WATERMARK)
    await scoring.broker.publish(request(expires_in_s=-1), TALLY_REQUESTS, key=b"c1")  # read after a restart
    assert scoring.tallies() == []
    assert (scoring.progress.reads, scoring.outcome("expired")) == (0, 1)


async def test_an_unreadable_request_is_dead_lettered(scoring: Scoring) -> None:
    await scoring.broker.publish(b'{"consultation_id": "c1"}', TALLY_REQUESTS, key=b"c1")
    [dead] = scoring.publisher.events(DEAD_LETTERS, MessageDeadLettered)
    assert (dead.source_topic, dead.service) == (TALLY_REQUESTS, "scoring")
    assert "not a TallyRequested" in dead.reason
    assert scoring.tallies() == []


def pages(respondents: int) -> dict[RankingKind, RankingPage]:
    method = RankingMethod(weights=dict(DEFAULT_WEIGHTS), formula="f", tie_break="t")
    return {
        kind: RankingPage(
            consultation_id="c1", kind=kind, as_of=None, respondents=respondents, total=0, offset=0, limit=0,
            method=method, items=[], view=RankingView.FILTERED,
        )
        for kind in RankingKind
    }  # fmt: skip


def reply_to(asked: TallyRequested, respondents: int, request_id: str | None = None) -> RankingsTallied:
    return RankingsTallied(
        event_id=f"reply-{respondents}",
        occurred_at=utc_now(),
        request_id=request_id or asked.event_id,
        consultation_id=asked.consultation_id,
        committed=asked.watermark,
        pages=pages(respondents),
    )


@dataclass
class FakeScoring:
    """Scoring as the publisher's client meets it on the broker: what it does with each request."""

    answer: str = "in-order"
    requests: list[TallyRequested] = field(default_factory=list)


@pytest.fixture
async def publisher() -> AsyncIterator[tuple[TallyClient, FakeScoring]]:
    broker, fake = KafkaBroker(), FakeScoring()
    client = TallyClient(lambda asked: broker.publish(asked, TALLY_REQUESTS, key=b"c1"), timeout_s=0.5)

    @broker.subscriber(TALLY_REQUESTS)
    async def scoring_side(asked: TallyRequested) -> None:
        fake.requests.append(asked)
        if fake.answer == "in-order":
            await broker.publish(reply_to(asked, 99, request_id="another replica's request"), TALLIES)
            await broker.publish(reply_to(asked, 7), TALLIES)
            await broker.publish(reply_to(asked, 8), TALLIES)  # a duplicate answer, later: ignored
        elif fake.answer == "behind":
            behind = reply_to(asked, 7).model_copy(update={"committed": []})
            await broker.publish(behind, TALLIES)

    @broker.subscriber(TALLIES)
    async def follower(reply: RankingsTallied) -> None:
        client.received(reply)

    async with TestKafkaBroker(broker):
        yield client, fake


async def test_the_client_keeps_the_reply_to_its_own_request_and_ignores_the_others(
    publisher: tuple[TallyClient, FakeScoring],
) -> None:
    client, fake = publisher
    got = await client.pages("c1", WATERMARK)
    [asked] = fake.requests
    assert {(p.topic, p.partition): p.offset for p in asked.watermark} == WATERMARK
    assert asked.expires_at - asked.occurred_at == timedelta(seconds=0.5)
    assert {kind: page.respondents for kind, page in got.items()} == dict.fromkeys(RankingKind, 7)
    again = await client.pages("c1", WATERMARK)  # a retry: a fresh request id, its own reply
    assert fake.requests[1].event_id != asked.event_id
    assert again[RankingKind.OPEN].respondents == 7


async def test_no_reply_in_time_raises_so_the_close_retries(publisher: tuple[TallyClient, FakeScoring]) -> None:
    client, fake = publisher
    fake.answer = "silent"
    with pytest.raises(TalliesUnanswered, match=r"no tallies from scoring within 0\.5 s"):
        await client.pages("c1", WATERMARK)
    assert len(fake.requests) == 1
    fake.answer = "in-order"
    assert (await client.pages("c1", WATERMARK))[RankingKind.IMPROVE].respondents == 7


async def test_a_reply_tallied_short_of_the_watermark_is_refused(publisher: tuple[TallyClient, FakeScoring]) -> None:
    client, fake = publisher
    fake.answer = "behind"
    with pytest.raises(TalliesUnanswered, match="does not answer"):
        await client.pages("c1", WATERMARK)

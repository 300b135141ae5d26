"""The close's tally request and reply on the real Kafka broker, at the size of a large consultation:
scoring's broker (compressed, as its app builds it) answers the publisher's channel with a suggestions
ranking of 20,000 rows, some 18 MB of JSON, more than the topic takes uncompressed."""

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from deploy.local.infra import Infra
from services.publisher.kafka_io import TallyChannel
from services.scoring.domain import DEFAULT_WEIGHTS
from services.scoring.settings import ScoringSettings
from services.scoring.tallies import TallyReplier, tally_router
from shared.contracts import (
    DatasetStatus,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    RankingMethod,
    RankingPage,
    RankingRow,
    RankingView,
    Tally,
)
from shared.kafka import BrokerPublisher, ensure_topics, make_broker
from shared.topics import MAX_MESSAGE_BYTES, MAX_TALLY_BYTES, RESPONSES_ENRICHED, TALLY_COMPRESSION, TOPICS

WATERMARK = {(RESPONSES_ENRICHED, 0): 20_000}


def row(n: int, kind: RankingKind) -> RankingRow:
    """A row with every profile's breakdown filled: the largest a row gets."""
    dataset = None if kind is RankingKind.SUGGESTIONS else f"d-{n:06d}"
    return RankingRow(
        rank=n + 1,
        key=dataset or f"title:registre des monuments {n:06d}",
        dataset_id=dataset,
        title=f"Registre des monuments et objets d'intérêt patrimonial n°{n}",
        status=None if dataset is None else DatasetStatus.NOT_OPEN,
        score=100_000 - n,
        respondents=50_000 - n,
        by_profile={p: Tally(score=1000 + n % 97, respondents=300 + n % 89) for p in Profile},
        by_priority=dict.fromkeys(Priority, 100 + n) if kind is RankingKind.OPEN else {},
        by_improvement=dict.fromkeys(ImprovementKind, 10 + n) if kind is RankingKind.IMPROVE else {},
    )


def large_tallies() -> dict[RankingKind, RankingPage]:
    sizes = {RankingKind.OPEN: 1200, RankingKind.IMPROVE: 150, RankingKind.SUGGESTIONS: 20_000}
    method = RankingMethod(weights=dict(DEFAULT_WEIGHTS), formula="Σ weight(priority)", tie_break="respondents, id")
    return {
        kind: RankingPage(
            consultation_id="c-large", kind=kind, as_of=datetime(2026, 1, 1, tzinfo=UTC), respondents=2_000_000,
            total=n, offset=0, limit=n, method=method, items=[row(i, kind) for i in range(n)],
            view=RankingView.FILTERED,
        )
        for kind, n in sizes.items()
    }  # fmt: skip


async def test_a_tally_of_20000_rows_goes_through_the_real_broker_compressed(infra: Infra) -> None:
    await ensure_topics(infra.kafka_bootstrap, TOPICS)
    tallies = large_tallies()
    size = sum(len(page.model_dump_json()) for page in tallies.values())
    assert MAX_MESSAGE_BYTES < size < MAX_TALLY_BYTES, size  # too large for the topic unless compressed

    async def read_tallies(consultation_id: str) -> dict[RankingKind, RankingPage]:
        return tallies

    async def committed() -> Mapping[tuple[str, int], int]:
        return WATERMARK

    settings = ScoringSettings(kafka_bootstrap=infra.kafka_bootstrap, consumer_group="scoring-tally-test")
    registry, logger = CollectorRegistry(), logging.getLogger("test.tallies")
    broker: KafkaBroker = make_broker(
        settings, registry, "scoring", compression_type=TALLY_COMPRESSION, max_request_size=MAX_TALLY_BYTES
    )
    replier = TallyReplier(
        read_tallies, committed, BrokerPublisher(broker), registry, logger, asyncio.Event(), max_wait_s=30
    )
    broker.include_router(tally_router(settings, replier))
    channel = TallyChannel(infra.kafka_bootstrap, timeout_s=60, logger=logger)
    await broker.start()
    await channel.start()
    try:
        started = time.perf_counter()
        got = await channel.client.pages("c-large", WATERMARK)
        elapsed = time.perf_counter() - started
    finally:
        await channel.stop()
        await broker.stop()
    assert got == tallies
    assert len(got[RankingKind.SUGGESTIONS].items) == 20_000
    logger.warning("tally of %.1f MB of JSON answered in %.1f s", size / 1e6, elapsed)

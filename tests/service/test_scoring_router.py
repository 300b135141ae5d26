"""Scoring's subscribers through FastStream's `TestKafkaBroker`, on an in-memory repository with the
MongoDB one's guards: counted once whatever is redelivered, the latest answer wins, late answers and
unreadable records set apart, conflicts re-planned, failures retried in place."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.scoring.domain import RowId
from services.scoring.handlers import SERVICE, ScoringMetrics, build_router
from services.scoring.settings import ScoringSettings
from shared.contracts import (
    ConsultationDefined,
    MessageDeadLettered,
    Priority,
    RankingKind,
)
from shared.kafka import make_broker
from shared.topics import DEAD_LETTERS, EXCLUSIONS, RESPONSES_ENRICHED
from tests.service.builders import CONSULTATION, T0, decision, deliver, enriched
from tests.service.fakes import InMemoryScoringRepository, RecordingPublisher

ORGANS = RowId("c1", RankingKind.OPEN, "d-organs")


class Scoring:
    """Scoring's routers on a test broker, with its ports and metrics."""

    def __init__(
        self,
        broker: KafkaBroker,
        repository: InMemoryScoringRepository,
        publisher: RecordingPublisher,
        registry: CollectorRegistry,
        consultations: dict[str, ConsultationDefined],
    ) -> None:
        self.broker, self.repository, self.publisher = broker, repository, publisher
        self.registry, self.consultations = registry, consultations

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def score(self, row: RowId = ORGANS) -> int:
        """The open-ranking score of a row with the default weights (3, 2, 1)."""
        counts = self.repository.rows_by[row].counts
        weights = {Priority.ESSENTIAL: 3, Priority.IMPORTANT: 2, Priority.USEFUL: 1}
        return sum(w * counts.get(("priority", p.value), 0) for p, w in weights.items())


@pytest.fixture
async def scoring() -> AsyncIterator[Scoring]:
    settings = ScoringSettings()
    registry = CollectorRegistry()
    repository, publisher = InMemoryScoringRepository(), RecordingPublisher()
    consultations = {"c1": CONSULTATION}
    broker = make_broker(settings, registry, SERVICE)
    router = build_router(settings, repository, publisher, consultations.get, ScoringMetrics(registry), asyncio.Event())
    broker.include_router(router)
    async with TestKafkaBroker(broker) as test_broker:
        yield Scoring(test_broker, repository, publisher, registry, consultations)


async def test_a_batch_is_counted_in_the_ballots_the_rows_and_the_totals(scoring: Scoring) -> None:
    await deliver(
        scoring.broker,
        RESPONSES_ENRICHED,
        enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}),
        enriched("r2", "p2", 2, opens={"d-organs": Priority.USEFUL, "d-museums": Priority.IMPORTANT}),
    )
    totals = scoring.repository.totals_by["c1"]
    assert (totals.respondents, totals.responses) == (2, 2)
    assert scoring.score() == 4
    assert scoring.repository.rows_by[ORGANS].counts[("respondents",)] == 2
    assert scoring.sample("scoring_responses_total", outcome="counted") == 2
    assert scoring.repository.writes == 1  # one batch, one write


async def test_a_redelivered_batch_changes_nothing(scoring: Scoring) -> None:
    batch = [enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}), enriched("r2", "p2", 2)]
    await deliver(scoring.broker, RESPONSES_ENRICHED, *batch)
    before = (dict(scoring.repository.stored), scoring.repository.totals_by["c1"], scoring.score())
    await deliver(scoring.broker, RESPONSES_ENRICHED, *batch)
    await deliver(scoring.broker, RESPONSES_ENRICHED, batch[0], batch[0])
    assert (dict(scoring.repository.stored), scoring.repository.totals_by["c1"], scoring.score()) == before
    assert scoring.sample("scoring_responses_total", outcome="duplicate") == 4


async def test_an_amendment_replaces_the_earlier_answer_whatever_the_order_they_come_in(scoring: Scoring) -> None:
    later = enriched("r2", "p1", 20, opens={"d-organs": Priority.USEFUL})
    earlier = enriched("r1", "p1", 10, opens={"d-organs": Priority.ESSENTIAL})
    await deliver(scoring.broker, RESPONSES_ENRICHED, later)
    await deliver(scoring.broker, RESPONSES_ENRICHED, earlier)
    ballot = scoring.repository.stored[("c1", "p1")]
    assert (ballot.response_id, ballot.seen) == ("r2", frozenset({"r1", "r2"}))
    assert scoring.score() == 1
    totals = scoring.repository.totals_by["c1"]
    assert (totals.respondents, totals.responses) == (1, 2)


async def test_answers_received_after_the_close_are_not_counted(scoring: Scoring) -> None:
    closes_after = (CONSULTATION.closes_at - T0).total_seconds()
    await deliver(
        scoring.broker,
        RESPONSES_ENRICHED,
        enriched("r1", "p1", closes_after - 0.001, opens={"d-organs": Priority.ESSENTIAL}),
        enriched("r2", "p2", closes_after, opens={"d-organs": Priority.ESSENTIAL}),
    )
    assert scoring.repository.totals_by["c1"].respondents == 1
    assert scoring.sample("scoring_responses_total", outcome="after_close") == 1


async def test_an_unreadable_record_is_dead_lettered_and_the_batch_is_counted(scoring: Scoring) -> None:
    await deliver(scoring.broker, RESPONSES_ENRICHED, b"[]", enriched("r1", "p1", 1))
    [dead] = scoring.publisher.events(DEAD_LETTERS, MessageDeadLettered)
    assert isinstance(dead, MessageDeadLettered)
    assert (dead.service, dead.source_topic, dead.payload) == ("scoring", RESPONSES_ENRICHED, "[]")
    assert "not a ResponseEnriched" in dead.reason
    assert scoring.repository.totals_by["c1"].respondents == 1
    assert scoring.sample("scoring_dead_letters_total") == 1


async def test_a_ballot_another_replica_changed_meanwhile_is_re_planned_not_overwritten(scoring: Scoring) -> None:
    await deliver(scoring.broker, RESPONSES_ENRICHED, enriched("r1", "p1", 1, opens={"d-organs": Priority.USEFUL}))
    # Between this batch's read and its write, another replica counts a later answer of the same respondent.
    scoring.repository.interleave = [enriched("r3", "p1", 30, opens={"d-organs": Priority.ESSENTIAL})]
    await deliver(scoring.broker, RESPONSES_ENRICHED, enriched("r2", "p1", 20, opens={"d-organs": Priority.IMPORTANT}))
    ballot = scoring.repository.stored[("c1", "p1")]
    assert (ballot.response_id, ballot.seen) == ("r3", frozenset({"r1", "r2", "r3"}))
    assert scoring.score() == 3
    totals = scoring.repository.totals_by["c1"]
    assert (totals.respondents, totals.responses) == (1, 3)
    assert scoring.sample("scoring_ballot_conflicts_total") == 1


async def test_a_batch_that_cannot_be_stored_is_retried_in_place_then_counted_once(scoring: Scoring) -> None:
    scoring.repository.failures = 2
    await deliver(scoring.broker, RESPONSES_ENRICHED, enriched("r1", "p1", 1, opens={"d-organs": Priority.USEFUL}))
    assert scoring.repository.totals_by["c1"].respondents == 1
    assert scoring.sample("scoring_batch_retries_total") == 2
    assert scoring.sample("scoring_responses_total", outcome="counted") == 1


async def test_an_exclusion_sets_its_respondents_aside_and_a_bad_tombstone_is_dead_lettered(scoring: Scoring) -> None:
    await deliver(
        scoring.broker,
        RESPONSES_ENRICHED,
        enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}),
        enriched("r2", "p2", 2, opens={"d-organs": Priority.ESSENTIAL}),
    )
    await deliver(scoring.broker, EXCLUSIONS, decision("k1", ["p2"]))
    await scoring.broker.publish(None, EXCLUSIONS, key=b"no-cluster-here")
    assert scoring.repository.attributed == {("c1", "p2"): "k1"}
    totals = scoring.repository.totals_by["c1"]
    assert (totals.respondents, totals.excluded_respondents, totals.excluded_clusters) == (2, 1, 1)
    assert scoring.repository.excluded_rows_by[ORGANS].counts[("respondents",)] == 1
    [dead] = scoring.publisher.events(DEAD_LETTERS, MessageDeadLettered)
    assert "tombstone" in dead.reason
    assert scoring.sample("scoring_exclusion_decisions_total", decision="exclude", outcome="applied") == 1

"""The closing flow over the routers: responses go through the catalogue's and scoring's subscribers on
one `TestKafkaBroker`, the publisher's `Ledger` folds the enriched responses the catalogue forwarded, then
the `Closer` freezes the results from that archive, checked against what scoring stored, once."""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from services.catalogue.domain import Catalogue
from services.catalogue.handlers import CatalogueHolder, CatalogueMetrics
from services.catalogue.handlers import build_router as catalogue_router
from services.catalogue.settings import CatalogueSettings
from services.publisher.archive import DatasetRef, FollowUp, Respondent
from services.publisher.closing import Closer, PublisherMetrics
from services.publisher.domain import Offsets
from services.publisher.files import RESULTS_JSON
from services.publisher.ledger import Ledger, Record
from services.publisher.repository import Publication, StoredFile
from services.scoring.domain import DEFAULT_WEIGHTS
from services.scoring.handlers import ScoringMetrics
from services.scoring.handlers import build_router as scoring_router
from services.scoring.intervals import LiveIntervals
from services.scoring.rankings import LiveRankings
from services.scoring.settings import ScoringSettings
from shared.contracts import (
    DatasetRecord,
    DatasetStatus,
    Priority,
    RankingKind,
    RankingPage,
    ResultsPublished,
)
from shared.topics import DEAD_LETTERS, EXCLUSIONS, RESPONSES_ENRICHED, RESPONSES_SUBMITTED
from tests.service.builders import CONSULTATION, deliver, submitted
from tests.service.fakes import InMemoryScoringRepository, RecordingPublisher

DATASETS = [
    DatasetRecord(dataset_id=f"d{i}", title=f"Jeu {i}", status=DatasetStatus.NOT_OPEN, source="census")
    for i in range(3)
]


class Forward(RecordingPublisher):
    """Catalogue's publisher: records, and puts the events back on the test broker for scoring."""

    def __init__(self) -> None:
        super().__init__()
        self.broker: KafkaBroker | None = None

    async def publish(self, topic: str, events: Sequence[tuple[str | None, BaseModel]]) -> None:
        await super().publish(topic, events)
        if events and self.broker is not None and topic != DEAD_LETTERS:
            await deliver(self.broker, topic, *(event for _, event in events))


class StoredRankings:
    """The publisher's `Rankings` port answered by scoring's read side on its repository, as scoring answers
    a tally request; records the watermarks asked for."""

    def __init__(self, repository: InMemoryScoringRepository) -> None:
        intervals = LiveIntervals(repository, DEFAULT_WEIGHTS, resamples=1)
        self.live = LiveRankings(repository, {"c1": CONSULTATION}.get, lambda _: None, intervals, DEFAULT_WEIGHTS)
        self.watermarks: list[Offsets] = []

    async def pages(self, consultation_id: str, watermark: Offsets) -> dict[RankingKind, RankingPage]:
        self.watermarks.append(watermark)
        return await self.live.tallies(consultation_id)


class CaughtUp:
    async def end_offsets(self, topic: str) -> Offsets:
        return {(topic, 0): 1}

    async def committed(self, group: str, topic: str) -> Offsets:
        return {(topic, 0): 1}


class Emitter:
    def __init__(self) -> None:
        self.emitted: list[ResultsPublished] = []

    async def emit_once(self, results: ResultsPublished) -> tuple[ResultsPublished, bool]:
        if not self.emitted:
            self.emitted.append(results)
        return self.emitted[0], len(self.emitted) == 1 and self.emitted[0] is results


class Files:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[ResultsPublished, dict[str, bytes]]] = {}

    async def get(self, consultation_id: str) -> Publication | None:
        if consultation_id not in self.saved:
            return None
        results, files = self.saved[consultation_id]
        return Publication(results, {n: StoredFile(n, "", len(d), 1) for n, d in files.items()}, None)

    async def save(self, results: ResultsPublished, files: Mapping[str, bytes]) -> None:
        self.saved[results.consultation_id] = (results, dict(files))

    async def file(self, consultation_id: str, stored: StoredFile) -> bytes:
        return self.saved[consultation_id][1][stored.name]

    async def release(self, consultation_id: str, at: object) -> None:
        raise NotImplementedError


def report(results: ResultsPublished, archive: Sequence[Respondent], follow_up: FollowUp, min_cell: int) -> bytes:
    return f"{results.respondents} respondents".encode()


async def test_the_results_frozen_at_the_close_are_those_the_subscribers_counted_and_emitted_once() -> None:
    registry, scored = CollectorRegistry(), InMemoryScoringRepository()
    forward, scoring_publisher = Forward(), RecordingPublisher()
    broker = KafkaBroker()
    broker.include_router(
        catalogue_router(CatalogueSettings(), CatalogueHolder(Catalogue(DATASETS)), forward, CatalogueMetrics(registry))
    )
    broker.include_router(
        scoring_router(
            ScoringSettings(), scored, scoring_publisher, {"c1": CONSULTATION}.get, ScoringMetrics(registry),
            asyncio.Event(),
        )
    )  # fmt: skip
    priorities = list(Priority)
    responses = [submitted(f"r{i}", f"p{i}", i, opens={f"d{i % 3}": priorities[i % 3]}) for i in range(12)]
    amended = submitted("r12", "p0", 100, opens={"d2": Priority.ESSENTIAL})  # p0 changes their mind
    async with TestKafkaBroker(broker) as test_broker:
        forward.broker = test_broker
        await deliver(test_broker, RESPONSES_SUBMITTED, *responses[:6])
        await deliver(test_broker, RESPONSES_SUBMITTED, *responses[6:], amended, responses[3])  # r3 redelivered
    assert scored.totals_by["c1"].respondents == 12
    archive = Ledger({"c1": CONSULTATION}.get)
    enriched = forward.published[RESPONSES_ENRICHED]
    folded = archive.fold(
        Record(RESPONSES_ENRICHED, 0, offset, key.encode() if key else None, event.model_dump_json().encode())
        for offset, (key, event) in enumerate(enriched)
    )
    assert (folded.responses, folded.invalid) == (14, [])
    archive.advance(RESPONSES_ENRICHED, 0, len(enriched))
    archive.advance(EXCLUSIONS, 0, 1)
    emitter, files = Emitter(), Files()
    rankings = StoredRankings(scored)
    closer = Closer(
        {"c1": CONSULTATION},
        CaughtUp(),
        rankings,
        archive,
        emitter,
        files,
        {d.dataset_id: DatasetRef(d.dataset_id, d.title, d.status) for d in DATASETS}.get,
        "test",
        report,
        settle=timedelta(seconds=1),
        poll_interval_s=1.0,
        metrics=PublisherMetrics(CollectorRegistry()),
        logger=logging.getLogger("test.publisher"),
    )
    results = await closer.close(CONSULTATION)
    again = await closer.close(CONSULTATION)  # another replica, or a restart
    assert [r.event_id for r in emitter.emitted] == [results.event_id] == [again.event_id]
    # Scoring's tallies are asked for at the watermark of scoring's topics the close waited for.
    assert rankings.watermarks == 2 * [{(RESPONSES_ENRICHED, 0): 1, (EXCLUSIONS, 0): 1}]
    assert (results.respondents, results.excluded_respondents) == (12, 0)
    scores = {row.key: row.score for row in results.open}
    # Weights 3, 2, 1: d0 had p0 (essential, amended away), p3, p6, p9; d2 gets p0's essential.
    assert scores == {"d0": 3 * 3, "d1": 4 * 2, "d2": 4 * 1 + 3}
    public = ResultsPublished.model_validate_json(files.saved["c1"][1][RESULTS_JSON])
    assert public.respondents == 12

"""A batch that cannot be stored is retried in place, and given up (uncommitted) when stopping."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping

import pytest
from prometheus_client import CollectorRegistry

from services.scoring.domain import Ballot, BatchPlan, Cluster, ExclusionPlan, StoredRow
from services.scoring.handlers import ScoringMetrics, store_until_committed
from services.scoring.repository import Totals
from shared.contracts import Priority, RankingKind
from tests.scoring_builders import enriched


class FlakyRepository:
    """Fails `failures` times, then stores the plans it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.applied: list[BatchPlan] = []

    async def load_ballots(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Ballot]:
        return {}

    async def exclusion_guards(self, consultation_ids: Iterable[str]) -> dict[str, int]:
        return dict.fromkeys(consultation_ids, 0)

    async def load_attribution(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return {}

    async def apply(self, plan: BatchPlan, guards: Mapping[str, int]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("MongoDB unreachable")
        self.applied.append(plan)

    async def load_clusters(self, consultation_ids: Iterable[str]) -> dict[tuple[str, str], Cluster]:
        return {}

    async def attribution(self, consultation_id: str) -> dict[str, str]:
        return {}

    async def apply_exclusions(self, plan: ExclusionPlan, revisions: Mapping[str, int]) -> None:
        raise NotImplementedError

    async def rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        return []

    async def excluded_rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        return []

    async def totals(self, consultation_id: str) -> Totals:
        return Totals()

    async def ballots(self, consultation_id: str) -> AsyncIterator[Ballot]:
        stored: list[Ballot] = []
        for ballot in stored:
            yield ballot


BATCH = [enriched("r1", "p1", 1, opens={"d1": Priority.ESSENTIAL})]


async def test_a_failing_batch_is_retried_in_place_until_it_commits() -> None:
    repository, metrics = FlakyRepository(failures=2), ScoringMetrics(CollectorRegistry())
    plan = await store_until_committed(repository, BATCH, metrics, logging.getLogger("test"), asyncio.Event())
    assert repository.applied == [plan]
    assert metrics.batch_retries._value.get() == 2


async def test_a_retrying_batch_is_given_up_uncommitted_when_the_service_stops() -> None:
    repository, stopping = FlakyRepository(failures=1000), asyncio.Event()
    metrics = ScoringMetrics(CollectorRegistry())
    retrying = asyncio.create_task(
        store_until_committed(repository, BATCH, metrics, logging.getLogger("test"), stopping)
    )
    await asyncio.sleep(0)  # the first attempt fails, and the retry waits
    stopping.set()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(retrying, 2)
    assert repository.applied == []

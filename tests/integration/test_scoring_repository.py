"""Scoring's MongoDB repository against the real MongoDB-compatible server."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from pymongo import AsyncMongoClient

from deploy.local.infra import Infra
from services.scoring.domain import DEFAULT_WEIGHTS, plan_batch, rank
from services.scoring.repository import BallotConflict, MongoScoringRepository
from shared.contracts import Priority, RankingKind
from tests.unit.test_scoring_domain import enriched


@pytest.fixture
async def repository(infra: Infra) -> AsyncIterator[MongoScoringRepository]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    repo = MongoScoringRepository(client, f"test_{uuid.uuid4().hex[:8]}")
    await repo.ensure_indexes()
    yield repo
    await client.close()


async def scores(repo: MongoScoringRepository, kind: RankingKind = RankingKind.OPEN) -> list[tuple[str, int, int]]:
    return [(r.key, r.score, r.respondents) for r in rank(kind, await repo.rows("c1", kind), DEFAULT_WEIGHTS)]


async def test_a_batch_applied_then_redelivered_counts_once(repository: MongoScoringRepository) -> None:
    batch = [
        enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL}),
        enriched("r2", "b", 2, opens={"d1": Priority.USEFUL, "d2": Priority.IMPORTANT}),
    ]
    await repository.apply(plan_batch(batch, await repository.load_ballots([("c1", "a"), ("c1", "b")])))
    redelivered = plan_batch(batch, await repository.load_ballots([("c1", "a"), ("c1", "b")]))
    assert redelivered.ballots == []
    await repository.apply(redelivered)
    assert await scores(repository) == [("d1", 4, 2), ("d2", 2, 1)]
    totals = await repository.totals("c1")
    assert (totals.respondents, totals.responses) == (2, 2)


async def test_an_amendment_moves_the_respondent(repository: MongoScoringRepository) -> None:
    await repository.apply(plan_batch([enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})], {}))
    stored = await repository.load_ballots([("c1", "a")])
    await repository.apply(plan_batch([enriched("r2", "a", 2, opens={"d2": Priority.USEFUL})], stored))
    assert await scores(repository) == [("d2", 1, 1)]
    assert (await repository.totals("c1")).respondents == 1


async def test_a_stale_plan_is_refused_whole(repository: MongoScoringRepository) -> None:
    await repository.apply(plan_batch([enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})], {}))
    stale = await repository.load_ballots([("c1", "a")])
    # Another replica commits an amendment of the same respondent first.
    await repository.apply(plan_batch([enriched("r2", "a", 2, opens={"d2": Priority.USEFUL})], stale))
    late_plan = plan_batch(
        [
            enriched("r3", "a", 3, opens={"d3": Priority.USEFUL}),
            enriched("r4", "b", 4, opens={"d4": Priority.USEFUL}),
        ],
        stale,
    )
    with pytest.raises(BallotConflict):
        await repository.apply(late_plan)
    # Nothing of the refused plan was written, not even respondent b's part of it.
    assert await scores(repository) == [("d2", 1, 1)]
    fresh = await repository.load_ballots([("c1", "a"), ("c1", "b")])
    assert set(fresh) == {("c1", "a")}


async def test_two_writers_inserting_the_same_new_respondent_conflict(
    repository: MongoScoringRepository,
) -> None:
    first = plan_batch([enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})], {})
    second = plan_batch([enriched("r2", "a", 2, opens={"d2": Priority.ESSENTIAL})], {})
    await repository.apply(first)
    with pytest.raises(BallotConflict):
        await repository.apply(second)
    old, new = second.ballots[0]
    assert old is None
    assert replace(new, version=0).response_id == "r2"
    assert await scores(repository) == [("d1", 3, 1)]

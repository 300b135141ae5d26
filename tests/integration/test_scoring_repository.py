"""Scoring's MongoDB repository against the real MongoDB-compatible server."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from pymongo import AsyncMongoClient

from deploy.local.infra import Infra
from services.scoring.domain import (
    DEFAULT_WEIGHTS,
    Cluster,
    ExclusionPlan,
    cluster_of,
    filtered,
    plan_batch,
    plan_exclusions,
    rank,
    respondents_touched,
)
from services.scoring.repository import BallotConflict, MongoScoringRepository
from shared.contracts import Decision, Priority, RankingKind
from tests.scoring_builders import decided, enriched


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
    await repository.apply(plan_batch(batch, await repository.load_ballots([("c1", "a"), ("c1", "b")])), {})
    redelivered = plan_batch(batch, await repository.load_ballots([("c1", "a"), ("c1", "b")]))
    assert redelivered.ballots == []
    await repository.apply(redelivered, {})
    assert await scores(repository) == [("d1", 4, 2), ("d2", 2, 1)]
    totals = await repository.totals("c1")
    assert (totals.respondents, totals.responses) == (2, 2)


async def test_an_amendment_moves_the_respondent(repository: MongoScoringRepository) -> None:
    await repository.apply(plan_batch([enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})], {}), {})
    stored = await repository.load_ballots([("c1", "a")])
    await repository.apply(plan_batch([enriched("r2", "a", 2, opens={"d2": Priority.USEFUL})], stored), {})
    assert await scores(repository) == [("d2", 1, 1)]
    assert (await repository.totals("c1")).respondents == 1


async def test_a_stale_plan_is_refused_whole(repository: MongoScoringRepository) -> None:
    await repository.apply(plan_batch([enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})], {}), {})
    stale = await repository.load_ballots([("c1", "a")])
    # Another replica commits an amendment of the same respondent first.
    await repository.apply(plan_batch([enriched("r2", "a", 2, opens={"d2": Priority.USEFUL})], stale), {})
    late_plan = plan_batch(
        [
            enriched("r3", "a", 3, opens={"d3": Priority.USEFUL}),
            enriched("r4", "b", 4, opens={"d4": Priority.USEFUL}),
        ],
        stale,
    )
    with pytest.raises(BallotConflict):
        await repository.apply(late_plan, {})
    # Nothing of the refused plan was written, not even respondent b's part of it.
    assert await scores(repository) == [("d2", 1, 1)]
    fresh = await repository.load_ballots([("c1", "a"), ("c1", "b")])
    assert set(fresh) == {("c1", "a")}


async def test_two_writers_inserting_the_same_new_respondent_conflict(
    repository: MongoScoringRepository,
) -> None:
    first = plan_batch([enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})], {})
    second = plan_batch([enriched("r2", "a", 2, opens={"d2": Priority.ESSENTIAL})], {})
    await repository.apply(first, {})
    with pytest.raises(BallotConflict):
        await repository.apply(second, {})
    old, new = second.ballots[0]
    assert old is None
    assert replace(new, version=0).response_id == "r2"
    assert await scores(repository) == [("d1", 3, 1)]


async def decide(repo: MongoScoringRepository, decisions: list[Cluster]) -> ExclusionPlan:
    """What the exclusions' subscriber does: read the guards, then plan, then apply."""
    revisions = {"c1": (await repo.totals("c1")).revision}
    clusters = await repo.load_clusters(["c1"])
    touched = respondents_touched(decisions, clusters)
    plan = plan_exclusions(decisions, clusters, await repo.load_attribution(touched), await repo.load_ballots(touched))
    await repo.apply_exclusions(plan, revisions)
    return plan


async def filtered_scores(repo: MongoScoringRepository) -> list[tuple[str, int, int]]:
    rows = filtered(await repo.rows("c1", RankingKind.OPEN), await repo.excluded_rows("c1", RankingKind.OPEN))
    return [(r.key, r.score, r.respondents) for r in rank(RankingKind.OPEN, rows, DEFAULT_WEIGHTS)]


async def test_an_exclusion_applied_twice_sets_aside_once_and_a_clear_puts_back(
    repository: MongoScoringRepository,
) -> None:
    batch = [
        enriched("r1", "honest", 1, opens={"d1": Priority.ESSENTIAL}),
        enriched("r2", "bot", 2, opens={"d1": Priority.USEFUL, "d2": Priority.USEFUL}),
    ]
    await repository.apply(plan_batch(batch, {}), {})
    exclude = cluster_of(decided("k1", Decision.EXCLUDE, ["bot", "later"]), 0)
    await decide(repository, [exclude])
    assert (await decide(repository, [exclude])).is_empty  # redelivered: nothing to write
    assert await filtered_scores(repository) == [("d1", 3, 1)]
    assert await scores(repository) == [("d1", 4, 2), ("d2", 1, 1)]
    totals = await repository.totals("c1")
    assert (totals.excluded_respondents, totals.excluded_clusters, totals.exclusions) == (1, 1, 1)
    assert await repository.attribution("c1") == {"bot": "k1", "later": "k1"}
    # A respondent listed before answering: their ballot counts as excluded when it arrives.
    guards = await repository.exclusion_guards(["c1"])
    excluded = await repository.load_attribution([("c1", "later")])
    await repository.apply(
        plan_batch([enriched("r3", "later", 3, opens={"d3": Priority.USEFUL})], {}, excluded), guards
    )
    assert await filtered_scores(repository) == [("d1", 3, 1)]
    assert (await repository.totals("c1")).excluded_respondents == 2
    await decide(repository, [cluster_of(decided("k1", Decision.CLEAR, ["bot", "later"]), 1)])
    assert await filtered_scores(repository) == await scores(repository)
    assert await repository.attribution("c1") == {}
    assert (await repository.totals("c1")).excluded_respondents == 0


async def test_responses_planned_before_an_exclusion_are_refused_and_an_exclusion_planned_before_responses_too(
    repository: MongoScoringRepository,
) -> None:
    await repository.apply(plan_batch([enriched("r1", "bot", 1, opens={"d1": Priority.ESSENTIAL})], {}), {})
    # Responses planned on "no exclusion"...
    guards = await repository.exclusion_guards(["c1"])
    stored = await repository.load_ballots([("c1", "bot")])
    late_responses = plan_batch([enriched("r2", "bot", 2, opens={"d2": Priority.USEFUL})], stored)
    # ...while the exclusion commits first.
    await decide(repository, [cluster_of(decided("k1", Decision.EXCLUDE, ["bot"]), 0)])
    with pytest.raises(BallotConflict):
        await repository.apply(late_responses, guards)
    # An exclusion planned on a revision that responses have since moved is refused too.
    revisions = {"c1": (await repository.totals("c1")).revision}
    clear = cluster_of(decided("k1", Decision.CLEAR, ["bot"]), 1)
    clusters = await repository.load_clusters(["c1"])
    touched = respondents_touched([clear], clusters)
    stale_plan = plan_exclusions(
        [clear], clusters, await repository.load_attribution(touched), await repository.load_ballots(touched)
    )
    guards = await repository.exclusion_guards(["c1"])
    excluded = await repository.load_attribution([("c1", "other")])
    await repository.apply(
        plan_batch([enriched("r3", "other", 3, opens={"d3": Priority.USEFUL})], {}, excluded), guards
    )
    with pytest.raises(BallotConflict):
        await repository.apply_exclusions(stale_plan, revisions)
    assert await filtered_scores(repository) == [("d3", 1, 1)]
    assert (await repository.totals("c1")).excluded_respondents == 1

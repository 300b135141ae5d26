"""Live and published rank intervals agree at the close when drawn with as many resamples; the live
ones are computed once per revision."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from services.publisher.archive import Method, public_archive_of
from services.publisher.files import IMPROVE_CSV, OPEN_CSV, ranking_files
from services.scoring.domain import DEFAULT_WEIGHTS, Ballot, StoredRow, contributions, rank, respondent_answers
from services.scoring.intervals import LiveIntervals, compute
from services.scoring.repository import Totals
from shared.contracts import RankingKind, RankingView
from tests.publisher_builders import DATASETS, consultation, csv_rows, marked_ballots, random_stream, scored, stuffing

RESAMPLES = 100
INTERVAL_COLUMNS = ("rank", "key", "rank_low", "rank_high", "too_close_to_call", "tie_group")


def live_rows(ballots: list[Ballot], kind: RankingKind, set_aside: set[str]) -> list[tuple[str, ...]]:
    """The live ranking of `kind` with its intervals, as scoring serves it (as CSV cells, to compare)."""

    counts: dict[str, Counter[tuple[str, ...]]] = {}
    for ballot in ballots:
        if ballot.respondent_key in set_aside:
            continue
        for row_id, change in contributions(ballot).items():
            if row_id.kind is kind:
                counts.setdefault(row_id.key, Counter()).update(change.counts)
    stored = [StoredRow(key=k, dataset_id=k, title=None, counts=dict(c)) for k, c in counts.items()]
    computed = compute("c1", respondent_answers("c1", ballots, set_aside), DEFAULT_WEIGHTS, RESAMPLES, 90)
    served = computed.rows(kind, rank(kind, stored, DEFAULT_WEIGHTS))
    return [
        (
            str(r.rank),
            r.key,
            str(r.rank_interval[0]) if r.rank_interval else "",
            str(r.rank_interval[1]) if r.rank_interval else "",
            str(r.too_close_to_call).lower(),
            str(r.tie_group),
            *(str(r.ranks_by_weighting[name]) for name in sorted(r.ranks_by_weighting)),
        )
        for r in served
    ]


def published_rows(data: bytes, kind: RankingKind) -> list[tuple[str, ...]]:
    extra = ("rank_equal_weights", "rank_essential_only") if kind is RankingKind.OPEN else ()
    return [tuple(row[c] for c in (*INTERVAL_COLUMNS, *extra)) for row in csv_rows(data)]


@pytest.mark.parametrize("seed", range(3))
def test_live_and_published_intervals_agree_at_the_close(seed: int) -> None:
    cluster_of, exclusions = stuffing(seed)
    store = scored(random_stream(seed))
    ballots = list(store.ballots.values())
    archive = public_archive_of(marked_ballots(seed, cluster_of), "c1", 5)
    method = Method(DEFAULT_WEIGHTS, "test-version", 5, RESAMPLES)
    for published_exclusions, set_aside in (([], set()), (exclusions, set(cluster_of))):
        files = ranking_files("event-1", consultation(), archive, DATASETS, method, published_exclusions)[1]
        for kind, name in ((RankingKind.OPEN, OPEN_CSV), (RankingKind.IMPROVE, IMPROVE_CSV)):
            published = published_rows(files[name], kind)
            assert len(published) > 3
            assert live_rows(ballots, kind, set_aside) == published, (kind, bool(set_aside))


class CountingRepository:
    """Ballots and totals of one consultation; counts how often all ballots are read."""

    def __init__(self, ballots: list[Ballot]) -> None:
        self.ballots_read = 0
        self._ballots = ballots
        self.revision = 1

    async def ballots(self, consultation_id: str) -> AsyncIterator[Ballot]:
        self.ballots_read += 1
        for ballot in self._ballots:
            yield ballot

    async def attribution(self, consultation_id: str) -> dict[str, str]:
        return {}

    async def totals(self, consultation_id: str) -> Totals:
        return Totals(revision=self.revision)


async def test_live_intervals_are_computed_once_per_revision_and_never_waited_for_after_the_first() -> None:
    repository = CountingRepository(list(scored(random_stream(1)).ballots.values()))
    live = LiveIntervals(repository, DEFAULT_WEIGHTS, 50)  # type: ignore[arg-type]
    first = await asyncio.gather(*(live.at("c1", RankingView.RAW, 1) for _ in range(5)))
    assert repository.ballots_read == 1
    assert all(found == first[0] for found in first)
    assert first[0].method.resamples == 50
    await live.at("c1", RankingView.FILTERED, 1)
    assert repository.ballots_read == 2
    repository.revision = 2
    stale = await live.at("c1", RankingView.RAW, 2)  # answered at once, with what was computed at revision 1
    assert stale == first[0]
    await live.drain()
    assert repository.ballots_read == 3
    await live.at("c1", RankingView.RAW, 2)
    await live.drain()
    assert repository.ballots_read == 3  # caught up: nothing more to compute


async def test_intervals_computed_while_the_ranking_moved_are_computed_again() -> None:
    repository = CountingRepository(list(scored(random_stream(1)).ballots.values()))
    repository.revision = 5  # changed since the page read revision 4
    live = LiveIntervals(repository, DEFAULT_WEIGHTS, 20)  # type: ignore[arg-type]
    await live.at("c1", RankingView.RAW, 4)
    await live.at("c1", RankingView.RAW, 4)
    await live.drain()
    assert repository.ballots_read == 2


async def test_background_computations_are_at_most_one_every_few_seconds() -> None:
    repository = CountingRepository(list(scored(random_stream(1)).ballots.values()))
    now = [100.0]
    live = LiveIntervals(repository, DEFAULT_WEIGHTS, 20, every_s=2.0, clock=lambda: now[0])  # type: ignore[arg-type]
    await live.at("c1", RankingView.RAW, 1)
    for revision in range(2, 6):  # answers pour in: a new revision at each request, within 2 s
        repository.revision = revision
        await live.at("c1", RankingView.RAW, revision)
        await live.drain()
    assert repository.ballots_read == 1
    now[0] += 2.0
    await live.at("c1", RankingView.RAW, 5)
    await live.drain()
    assert repository.ballots_read == 2

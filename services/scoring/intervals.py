"""The live rank intervals: computed once per consultation, view and revision, from every counted ballot.

A bootstrap reads all the consultation's ballots and resamples them (`shared.uncertainty`): too costly per
request, cheap per revision. Answers are cached by revision (the tallies' change counter), the last few
kept; concurrent requests for one consultation wait for one computation.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from services.scoring.domain import respondent_answers
from services.scoring.repository import ScoringRepository
from shared.contracts import Priority, RankingKind, RankingRow, RankingView, RankUncertainty
from shared.uncertainty import (
    DEFAULT_LEVEL,
    Answers,
    Interval,
    alternative_ranks,
    intervals_of,
    method_of,
    seed_of,
    with_intervals,
)

KEEP = 32


@dataclass(frozen=True)
class Computed:
    """The rank intervals of a consultation's three rankings at one revision, and the alternative ranks."""

    intervals: Mapping[RankingKind, Mapping[str, Interval]]
    alternatives: Mapping[str, Mapping[str, int]]
    method: RankUncertainty

    def rows(self, kind: RankingKind, rows: list[RankingRow]) -> list[RankingRow]:
        return with_intervals(rows, self.intervals[kind], self.alternatives if kind is RankingKind.OPEN else None)


def compute(
    consultation_id: str,
    answers: Sequence[Answers],
    weights: Mapping[Priority, int],
    resamples: int,
    level: int,
) -> Computed:
    """The intervals and alternative ranks of the answers, drawn from the consultation's seed."""
    seed = seed_of(consultation_id)
    return Computed(
        intervals_of(answers, weights, resamples, seed, level),
        alternative_ranks(answers),
        method_of(resamples, seed, level),
    )


class LiveIntervals:
    """Stale while revalidating: a consultation's first request waits for its intervals; later ones are
    answered at once with the latest intervals computed (`method.uncertainty.respondents` says over how
    many), while one computation at a time, at most every `every_s`, catches up in the background. The
    hot path (a response counted, its ranking read) never waits for a bootstrap."""

    def __init__(
        self,
        repository: ScoringRepository,
        weights: Mapping[Priority, int],
        resamples: int,
        level: int = DEFAULT_LEVEL,
        every_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._weights = weights
        self._resamples = resamples
        self._level = level
        self._every_s = every_s
        self._clock = clock
        self._latest: OrderedDict[tuple[str, RankingView], tuple[int, Computed]] = OrderedDict()
        self._locks: dict[tuple[str, RankingView], asyncio.Lock] = {}
        self._started: dict[tuple[str, RankingView], float] = {}
        self._refreshing: dict[tuple[str, RankingView], asyncio.Task[None]] = {}

    async def at(self, consultation_id: str, view: RankingView, revision: int) -> Computed:
        """The intervals at `revision`, or the latest computed while those are being computed."""
        key = (consultation_id, view)
        held = self._latest.get(key)
        if held is not None:
            self._latest.move_to_end(key)
            if held[0] != revision:
                self._refresh_soon(key, revision)
            return held[1]
        async with self._locks.setdefault(key, asyncio.Lock()):  # the first request waits, once
            held = self._latest.get(key)
            if held is None:
                await self._compute(key, revision)
                held = self._latest.get(key)
        assert held is not None
        return held[1]

    def _refresh_soon(self, key: tuple[str, RankingView], revision: int) -> None:
        running = self._refreshing.get(key)
        if running is not None and not running.done():
            return
        if self._clock() - self._started.get(key, float("-inf")) < self._every_s:
            return
        task = asyncio.get_running_loop().create_task(self._compute(key, revision))
        self._refreshing[key] = task

    async def _compute(self, key: tuple[str, RankingView], revision: int) -> None:
        consultation_id, view = key
        self._started[key] = self._clock()
        ballots = [ballot async for ballot in self._repository.ballots(consultation_id)]
        set_aside = set(await self._repository.attribution(consultation_id)) if view is RankingView.FILTERED else set()
        answers = respondent_answers(consultation_id, ballots, set_aside)
        computed = await asyncio.to_thread(
            compute, consultation_id, answers, self._weights, self._resamples, self._level
        )
        now = (await self._repository.totals(consultation_id)).revision
        held = self._latest.get(key)
        # Kept at the revision it was computed for only if nothing landed meanwhile; else as the latest
        # available (older than `now`, so the next request starts another computation).
        self._latest[key] = (revision if now == revision else -1, computed)
        if held is not None and held[0] == now and now != revision:
            self._latest[key] = held
        while len(self._latest) > KEEP:
            self._latest.popitem(last=False)

    async def drain(self) -> None:
        """Wait for the computations under way (tests, shutdown)."""
        running = [task for task in self._refreshing.values() if not task.done()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

"""The live rank intervals: computed once per consultation, view and revision, from every counted ballot.

A bootstrap reads all the consultation's ballots and resamples them (`shared.uncertainty`): too costly per
request, cheap per revision. Answers are cached by revision (the tallies' change counter), the last few
kept; concurrent requests for one consultation wait for one computation.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
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
    def __init__(
        self,
        repository: ScoringRepository,
        weights: Mapping[Priority, int],
        resamples: int,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        self._repository = repository
        self._weights = weights
        self._resamples = resamples
        self._level = level
        self._cache: OrderedDict[tuple[str, RankingView, int], Computed] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def at(self, consultation_id: str, view: RankingView, revision: int) -> Computed:
        """The intervals at `revision` (computed now if not yet; cached only if no change landed meanwhile)."""
        key = (consultation_id, view, revision)
        async with self._locks.setdefault(consultation_id, asyncio.Lock()):
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
            ballots = [ballot async for ballot in self._repository.ballots(consultation_id)]
            set_aside = (
                set(await self._repository.attribution(consultation_id)) if view is RankingView.FILTERED else set()
            )
            answers = respondent_answers(consultation_id, ballots, set_aside)
            computed = await asyncio.to_thread(
                compute, consultation_id, answers, self._weights, self._resamples, self._level
            )
            if (await self._repository.totals(consultation_id)).revision == revision:
                self._cache[key] = computed
                while len(self._cache) > KEEP:
                    self._cache.popitem(last=False)
            return computed

"""Scoring's read side: the live ranking pages, who may read them, each respondent's counted ballot and
the exclusions in force, from the stored tallies, the consultations and the catalogue."""

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.scoring.domain import counted_ballot, exclusions_in_force, filtered, method, rank, with_catalogue
from services.scoring.intervals import LiveIntervals
from services.scoring.repository import ScoringRepository
from shared.contracts import (
    ConsultationDefined,
    CountedBallot,
    DatasetRecord,
    ExclusionInForce,
    Priority,
    Profile,
    RankingKind,
    RankingPage,
    RankingView,
    utc_now,
)

__all__ = ["LiveRankings", "UnknownConsultation"]


class UnknownConsultation(LookupError):
    """No consultation of this id is defined."""


@dataclass
class LiveRankings:
    """The use cases behind scoring's HTTP API, on the ports they read."""

    repository: ScoringRepository
    consultations: Callable[[str], ConsultationDefined | None]
    dataset: Callable[[str], DatasetRecord | None]
    intervals: LiveIntervals
    weights: Mapping[Priority, int]
    clock: Callable[[], datetime] = utc_now

    def is_public(self, consultation_id: str) -> bool:
        """Whether anyone may read the live rankings now: the consultation made them public and is open.
        After the close, nobody but staff reads them before the publisher publishes the results."""
        consultation = self.consultations(consultation_id)
        return consultation is not None and consultation.public_rankings and consultation.is_open_at(self.clock())

    def _known(self, consultation_id: str) -> None:
        if self.consultations(consultation_id) is None:
            raise UnknownConsultation(consultation_id)

    async def revision(self, consultation_id: str) -> int:
        """The tallies' change counter: a ranking changes only when it moves."""
        return (await self.repository.totals(consultation_id)).revision

    async def page(
        self,
        consultation_id: str,
        kind: RankingKind,
        profile: Profile | None,
        limit: int | None,
        offset: int,
        view: RankingView | None,
        intervals: bool = True,
    ) -> tuple[RankingPage, int]:
        """A page of a ranking (the whole of it from `offset` if `limit` is None), raw or filtered (by
        default filtered once a cluster is excluded), with the revision it was read at; with the rank
        intervals unless `intervals` is false."""
        self._known(consultation_id)
        totals = await self.repository.totals(consultation_id)
        if view is None:
            view = RankingView.FILTERED if totals.excluded_clusters else RankingView.RAW
        rows = await self.repository.rows(consultation_id, kind)
        respondents = totals.respondents
        if view is RankingView.FILTERED and totals.exclusions:
            rows = filtered(rows, await self.repository.excluded_rows(consultation_id, kind))
            respondents -= totals.excluded_respondents
        ranked = rank(kind, rows, self.weights, profile)
        if limit is None:
            limit = max(len(ranked) - offset, 0)
        items = with_catalogue(ranked[offset : offset + limit], self.dataset)
        bootstrap = None
        if intervals and profile is None:  # intervals resample the whole ranking, not one profile's part
            computed = await self.intervals.at(consultation_id, view, totals.revision)
            items, bootstrap = computed.rows(kind, items), computed.method
        page = RankingPage(
            consultation_id=consultation_id,
            kind=kind,
            as_of=totals.as_of,
            respondents=respondents,
            total=len(ranked),
            offset=offset,
            limit=limit,
            method=method(self.weights, bootstrap),
            items=items,
            view=view,
            excluded_respondents=totals.excluded_respondents,
        )
        return page, totals.revision

    async def tallies(self, consultation_id: str) -> dict[RankingKind, RankingPage]:
        """Every ranking whole and filtered, without rank intervals: what the publisher checks its archive
        against at the close (a bootstrap over every ballot would take minutes there)."""
        return {
            kind: (await self.page(consultation_id, kind, None, None, 0, RankingView.FILTERED, intervals=False))[0]
            for kind in RankingKind
        }

    async def counted_ballots(self, consultation_id: str) -> AsyncIterator[CountedBallot]:
        """Every respondent's counted submission (none of those who withdrew), each naming the excluded
        cluster its respondent is set aside for. The attribution is read now, the ballots as they are
        iterated."""
        self._known(consultation_id)
        attributed = await self.repository.attribution(consultation_id)
        return self._counted(consultation_id, attributed)

    async def _counted(self, consultation_id: str, attributed: Mapping[str, str]) -> AsyncIterator[CountedBallot]:
        async for ballot in self.repository.ballots(consultation_id):
            if ballot.withdrawn:
                continue  # a respondent who withdrew is in no archive
            yield counted_ballot(ballot, attributed.get(ballot.respondent_key))

    async def exclusions(self, consultation_id: str) -> list[ExclusionInForce]:
        """The clusters set aside now, by id, each with the counted respondents attributed to it."""
        self._known(consultation_id)
        clusters = await self.repository.load_clusters([consultation_id])
        attributed = await self.repository.attribution(consultation_id)
        ballots = await self.repository.load_ballots((consultation_id, key) for key in attributed)
        return exclusions_in_force(clusters.values(), attributed, ballots.values())

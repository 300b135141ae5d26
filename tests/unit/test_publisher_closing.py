"""The closing flow with hand-written fakes: what is emitted and stored, and what is not."""

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from services.publisher.archive import FollowUp, Respondent, same_totals
from services.publisher.closing import Closer, PublisherMetrics, ResultsDisagree
from services.publisher.domain import Offsets
from services.publisher.files import METHOD_JSON, RESULTS_JSON
from services.publisher.repository import Publication, StoredFile
from services.scoring.domain import DEFAULT_WEIGHTS, counted_ballot, method, rank
from shared.contracts import (
    ConsultationDefined,
    CountedBallot,
    ExclusionInForce,
    RankingKind,
    RankingPage,
    RankingView,
    ResultsPublished,
    utc_now,
)
from tests.unit.test_publisher_opendata import DATASETS, random_stream, scored


class CaughtUp:
    async def end_offsets(self, topic: str) -> Offsets:
        return {(topic, 0): 10}

    async def committed(self, group: str, topic: str) -> Offsets:
        return {(topic, 0): 10}


class FakeScoring:
    """Scoring with the respondents of `cluster_of` (respondent key -> cluster id) set aside for the
    clusters `exclusions` lists: ballots marked, rankings served filtered."""

    def __init__(
        self,
        seed: int,
        drop_one_ballot: bool = False,
        cluster_of: Mapping[str, str] | None = None,
        exclusions: Sequence[ExclusionInForce] = (),
        view: RankingView = RankingView.FILTERED,
    ) -> None:
        stream = random_stream(seed)
        self.cluster_of = dict(cluster_of or {})
        self.store = scored(stream)
        self.filtered = scored([m for m in stream if m.response.respondent_key not in self.cluster_of])
        self.drop_one_ballot = drop_one_ballot
        self.listed = list(exclusions)
        self.view = view
        self.ballot_reads = 0

    async def ballots(self, consultation_id: str) -> list[CountedBallot]:
        self.ballot_reads += 1
        ballots = [
            counted_ballot(b).model_copy(update={"exclusion": self.cluster_of.get(key)})
            for (_, key), b in self.store.ballots.items()
        ]
        return ballots[1:] if self.drop_one_ballot else ballots

    async def exclusions(self, consultation_id: str) -> list[ExclusionInForce]:
        return self.listed

    def positions(self, topic: str) -> Offsets:
        return {(topic, 0): 10}

    async def page(self, consultation_id: str, kind: RankingKind) -> RankingPage:
        store = self.filtered if self.view is RankingView.FILTERED else self.store
        rows = store.stored_rows(kind)
        if kind is RankingKind.SUGGESTIONS:
            rows = [r.__class__(r.key, r.key if r.key == "d3" else None, None, r.counts) for r in rows]
        items = rank(kind, rows, DEFAULT_WEIGHTS)
        return RankingPage(
            consultation_id=consultation_id,
            kind=kind,
            as_of=None,
            respondents=len(store.ballots),
            total=len(items),
            offset=0,
            limit=len(items),
            method=method(DEFAULT_WEIGHTS),
            items=items,
            view=self.view,
            excluded_respondents=len(self.store.ballots) - len(self.filtered.ballots),
        )


class FakeEmitter:
    def __init__(self) -> None:
        self.emitted: list[ResultsPublished] = []

    async def emit_once(self, results: ResultsPublished) -> tuple[ResultsPublished, bool]:
        if self.emitted:
            return self.emitted[0], False
        self.emitted.append(results)
        return results, True


class FakeRepository:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[ResultsPublished, Mapping[str, bytes]]] = {}

    async def get(self, consultation_id: str) -> Publication | None:
        if consultation_id not in self.saved:
            return None
        results, files = self.saved[consultation_id]
        return Publication(results, {n: StoredFile(n, "", len(d), 1) for n, d in files.items()}, None)

    async def save(self, results: ResultsPublished, files: Mapping[str, bytes]) -> None:
        self.saved[results.consultation_id] = (results, dict(files))

    async def file(self, consultation_id: str, stored: StoredFile) -> bytes:
        return self.saved[consultation_id][1][stored.name]

    async def release(self, consultation_id: str, at: datetime) -> None:
        raise NotImplementedError


def closed_consultation() -> ConsultationDefined:
    now = utc_now()
    return ConsultationDefined(
        event_id="e", occurred_at=now, consultation_id="c1", title="t",
        opens_at=now - timedelta(days=1), closes_at=now - timedelta(seconds=10),
    )  # fmt: skip


def closer(scoring: FakeScoring, emitter: FakeEmitter, repository: FakeRepository) -> Closer:
    def report(results: ResultsPublished, archive: list[Respondent], follow_up: FollowUp, min_cell: int) -> bytes:
        return f"{results.respondents} {len(archive)}".encode()

    return Closer(
        {"c1": closed_consultation()},
        CaughtUp(),
        scoring,
        scoring,  # the archive: the same ballots as scoring's (or not, when a test drops one)
        emitter,
        repository,
        DATASETS.get,
        "test",
        report,  # type: ignore[arg-type]
        settle=timedelta(seconds=1),
        poll_interval_s=1.0,
        metrics=PublisherMetrics(CollectorRegistry()),
        logger=logging.getLogger("test"),
    )


async def test_a_closed_consultation_is_published_once_with_its_files() -> None:
    scoring, emitter, repository = FakeScoring(1), FakeEmitter(), FakeRepository()
    flow = closer(scoring, emitter, repository)
    await flow.tick()
    await flow.tick()
    assert len(emitter.emitted) == 1
    results, files = repository.saved["c1"]
    frozen = emitter.emitted[0]
    assert results == frozen  # stored for staff, in full detail
    assert frozen.respondents == len(scoring.store.ballots)
    # What is published is ranked from the public archive: the same totals, no small breakdown cell.
    public = ResultsPublished.model_validate_json(files[RESULTS_JSON])
    assert (public.event_id, public.respondents) == (frozen.event_id, frozen.respondents)
    assert same_totals(frozen, public) == []
    for row in [*public.open, *public.improve, *public.suggestions]:
        cells = [t.respondents for t in row.by_profile.values()] + [*row.by_priority.values()]
        assert all(n >= 5 for n in [*cells, *row.by_improvement.values()]), row
    assert any(
        0 < t.respondents < 5 for row in frozen.open for t in row.by_profile.values()
    )  # the frozen results had some
    assert {"a-ouvrir.csv", "reponses.csv", "datapackage.json", "methode.json", "rapport.html"} <= set(files)
    assert scoring.ballot_reads == 1


async def test_files_stored_before_the_publication_rules_are_rendered_again_without_a_second_emission() -> None:
    scoring, emitter, repository = FakeScoring(1), FakeEmitter(), FakeRepository()
    await closer(scoring, emitter, repository).tick()
    results, files = repository.saved["c1"]
    method = json.loads(files[METHOD_JSON])
    del method["publication"]
    repository.saved["c1"] = (emitter.emitted[0], dict(files, **{METHOD_JSON: json.dumps(method).encode()}))
    await closer(scoring, emitter, repository).tick()  # a new process: the old files are found
    assert len(emitter.emitted) == 1
    assert repository.saved["c1"] == (results, files)
    assert scoring.ballot_reads == 2


async def test_nothing_is_published_when_the_archive_and_the_tallies_disagree_and_retries_back_off() -> None:
    scoring, emitter, repository = FakeScoring(1, drop_one_ballot=True), FakeEmitter(), FakeRepository()
    flow = closer(scoring, emitter, repository)
    with pytest.raises(ResultsDisagree):
        await flow.tick()
    await flow.tick()  # too soon: the next attempt waits (2 s, then 4 s… up to a minute)
    assert scoring.ballot_reads == 1
    assert emitter.emitted == []
    assert repository.saved == {}

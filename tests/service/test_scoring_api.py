"""Scoring's HTTP API (`ScoringApi` on `LiveRankings`) through an ASGI client, on an in-memory repository
filled by scoring's own store use cases: the ranking in weighted order with the catalogue's titles and
rank intervals, `ETag`/`304`, who may read, the filtered view once a cluster is excluded, the counted
ballots and the exclusions for administrators, and the live feed."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.scoring.api import ScoringApi
from services.scoring.domain import DEFAULT_WEIGHTS, cluster_of
from services.scoring.handlers import ScoringMetrics, store_batch, store_decisions
from services.scoring.intervals import LiveIntervals
from services.scoring.rankings import LiveRankings
from shared.catalogue_view import CatalogueView
from shared.contracts import (
    DatasetCatalogued,
    DatasetRecord,
    DatasetStatus,
    ExclusionDecided,
    Priority,
    ResponseEnriched,
)
from shared.http import install_problem_handlers
from tests.service.builders import CONSULTATION, T0, decision, enriched
from tests.service.fakes import Clock, InMemoryScoringRepository

ADMIN = "admin-token-for-tests"
STAFF = {"Authorization": f"Bearer {ADMIN}"}
DURING = T0 + timedelta(days=1)
RANKINGS = "/v1/consultations/c1/rankings"
RESAMPLES = 20


class Scoring:
    """Scoring's read side on an in-memory repository, its API on an ASGI client, as `create_app` wires them."""

    def __init__(self) -> None:
        self.repository = InMemoryScoringRepository()
        self.metrics = ScoringMetrics(CollectorRegistry())
        self.clock = Clock(DURING)
        self.consultations = {"c1": CONSULTATION}
        self.catalogue = CatalogueView("unused:9092", logging.getLogger("test.scoring"))
        intervals = LiveIntervals(self.repository, DEFAULT_WEIGHTS, RESAMPLES)
        self.live = LiveRankings(
            self.repository, self.consultations.get, self.catalogue.dataset, intervals, DEFAULT_WEIGHTS, self.clock
        )
        self.api = ScoringApi(ADMIN, self.live, stream_poll_s=0.01)
        app = FastAPI()
        install_problem_handlers(app)
        app.include_router(self.api.router())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://scoring")
        self.decisions = 0

    def make_public(self) -> None:
        self.consultations["c1"] = CONSULTATION.model_copy(update={"public_rankings": True})

    async def count(self, *responses: ResponseEnriched) -> None:
        await store_batch(self.repository, responses, self.metrics)

    async def decide(self, *decisions: ExclusionDecided) -> None:
        clusters = []
        for decided in decisions:
            self.decisions += 1
            clusters.append(cluster_of(decided, self.decisions))
        await store_decisions(self.repository, clusters, self.metrics)

    async def ranking(self, headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        return await self.client.get(RANKINGS, params=params, headers=STAFF if headers is None else headers)


@pytest.fixture
async def scoring() -> AsyncIterator[Scoring]:
    service = Scoring()
    async with service.client:
        yield service


def catalogued(dataset_id: str, title: str, status: DatasetStatus, retired: bool = False) -> DatasetCatalogued:
    return DatasetCatalogued(
        event_id=f"catalogued-{dataset_id}",
        occurred_at=T0,
        dataset_id=dataset_id,
        retired=retired,
        dataset=DatasetRecord(dataset_id=dataset_id, title=title, status=status, source="test"),
    )


async def test_a_ranking_is_in_weighted_order_with_the_catalogue_s_titles_and_its_rank_intervals(
    scoring: Scoring,
) -> None:
    await scoring.count(
        enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL, "d-museums": Priority.USEFUL}),
        enriched("r2", "p2", 2, opens={"d-museums": Priority.IMPORTANT}),
        enriched("r3", "p3", 3, opens={"d-organs": Priority.USEFUL, "d-roads": Priority.USEFUL}),
    )
    scoring.catalogue.put("d-museums", catalogued("d-museums", "Musées de France", DatasetStatus.OPEN))
    scoring.catalogue.put("d-roads", catalogued("d-roads", "Routes", DatasetStatus.OPEN, retired=True))
    answer = await scoring.ranking()
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    page = answer.json()
    rows = [(row["key"], row["score"], row["title"], row["status"]) for row in page["items"]]
    assert rows == [
        ("d-organs", 4, "Title d-organs", None),
        ("d-museums", 3, "Musées de France", "open"),  # the catalogue's title and status now
        ("d-roads", 1, "Title d-roads", None),  # retired: the title the respondents saw, no status
    ]
    assert (page["respondents"], page["total"], page["view"]) == (3, 3, "raw")
    assert page["method"]["weights"] == {"essential": 3, "important": 2, "useful": 1}
    assert page["method"]["uncertainty"]["resamples"] == RESAMPLES
    assert all(row["rank_interval"] is not None for row in page["items"])

    second = (await scoring.ranking(limit=1, offset=1, profile="researcher")).json()
    assert [row["key"] for row in second["items"]] == ["d-museums"]
    assert (second["total"], second["offset"], second["limit"]) == (3, 1, 1)
    # The intervals resample the whole ranking: none for one profile's part of it.
    assert second["method"]["uncertainty"] is None
    assert second["items"][0]["rank_interval"] is None

    # The publisher's cross-check reads the tallies alone: the same rows, no bootstrap.
    tallies = (await scoring.ranking(intervals="false")).json()
    assert [(r["key"], r["score"]) for r in tallies["items"]] == [(r["key"], r["score"]) for r in page["items"]]
    assert tallies["method"]["uncertainty"] is None
    assert all(row["rank_interval"] is None for row in tallies["items"])


async def test_the_etag_answers_304_until_the_ranking_moves(scoring: Scoring) -> None:
    await scoring.count(enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}))
    first = await scoring.ranking()
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"

    for sent in (etag, f'"elsewhere", {etag}'):
        unchanged = await scoring.ranking({**STAFF, "If-None-Match": sent})
        assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", etag)

    await scoring.count(enriched("r2", "p2", 2, opens={"d-organs": Priority.USEFUL}))
    moved = await scoring.ranking({**STAFF, "If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["etag"] != etag
    assert moved.json()["respondents"] == 2


async def test_live_rankings_are_for_staff_unless_public_while_the_consultation_is_open(scoring: Scoring) -> None:
    refused = await scoring.ranking({})
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await scoring.ranking({"Authorization": "Bearer wrong"})).status_code == 401

    scoring.make_public()
    assert (await scoring.ranking({})).status_code == 200
    assert (await scoring.ranking({"Authorization": "Bearer wrong"})).status_code == 401  # a token is checked

    scoring.clock.now = CONSULTATION.closes_at  # after the close, nobody else before the results
    assert (await scoring.ranking({})).status_code == 401
    assert (await scoring.ranking()).status_code == 200
    scoring.clock.now = CONSULTATION.opens_at - timedelta(seconds=1)
    assert (await scoring.ranking({})).status_code == 401


@pytest.mark.parametrize("route", ["rankings", "rankings/stream", "ballots", "exclusions"])
async def test_every_route_answers_404_for_an_unknown_consultation(scoring: Scoring, route: str) -> None:
    answer = await scoring.client.get(f"/v1/consultations/c2/{route}", headers=STAFF)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "No consultation 'c2'."


@pytest.mark.parametrize("route", ["ballots", "exclusions"])
async def test_ballots_and_exclusions_are_for_administrators_only(scoring: Scoring, route: str) -> None:
    scoring.make_public()
    assert (await scoring.client.get(f"/v1/consultations/c1/{route}")).status_code == 401


async def test_once_a_cluster_is_excluded_the_ranking_is_filtered_by_default(scoring: Scoring) -> None:
    await scoring.count(
        enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}),
        enriched("r2", "p2", 2, opens={"d-organs": Priority.ESSENTIAL}),
    )
    await scoring.decide(decision("k1", ["p2"]))

    filtered = (await scoring.ranking()).json()
    assert (filtered["view"], filtered["respondents"], filtered["excluded_respondents"]) == ("filtered", 1, 1)
    assert filtered["items"][0]["score"] == 3
    raw = (await scoring.ranking(view="raw")).json()
    assert (raw["view"], raw["respondents"], raw["excluded_respondents"]) == ("raw", 2, 1)
    assert raw["items"][0]["score"] == 6


async def test_the_counted_ballots_name_their_exclusion_and_leave_out_who_withdrew(scoring: Scoring) -> None:
    await scoring.count(
        enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}),
        enriched("r2", "p2", 2, opens={"d-organs": Priority.USEFUL}),
        enriched("r3", "p3", 3, opens={"d-organs": Priority.USEFUL}),
    )
    await scoring.count(enriched("r4", "p3", 4, withdrawn=True))
    await scoring.decide(decision("k1", ["p2"]))

    answer = await scoring.client.get("/v1/consultations/c1/ballots", headers=STAFF)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-ndjson"
    ballots = [httpx.Response(200, content=line).json() for line in answer.content.splitlines()]
    assert [(b["response_id"], b["exclusion"]) for b in ballots] == [("r1", None), ("r2", "k1")]
    assert "respondent_key" not in ballots[0]


async def test_the_exclusions_in_force_count_their_respondents(scoring: Scoring) -> None:
    await scoring.count(
        enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}),
        enriched("r2", "p2", 2, opens={"d-organs": Priority.USEFUL}),
    )
    await scoring.decide(decision("k1", ["p1", "p2", "p-never-counted"]))
    answer = await scoring.client.get("/v1/consultations/c1/exclusions", headers=STAFF)
    assert answer.status_code == 200
    body = answer.json()
    assert body["consultation_id"] == "c1"
    assert [(e["cluster_id"], e["respondents"]) for e in body["exclusions"]] == [("k1", 2)]


class Connection:
    """What the feed asks of its request: whether the client went away."""

    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


async def next_event(events: AsyncIterator[Any]) -> bytes:
    return bytes(await asyncio.wait_for(anext(events), timeout=5))


def fields(event: bytes) -> Iterator[tuple[str, str]]:
    for line in event.decode().strip().splitlines():
        name, _, value = line.partition(": ")
        yield name, value


async def test_the_feed_sends_the_ranking_again_when_it_moves_and_a_public_feed_ends_at_the_close(
    scoring: Scoring,
) -> None:
    scoring.make_public()
    await scoring.count(enriched("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}))
    feed = await scoring.api.ranking_stream(Connection(), "c1")  # type: ignore[arg-type]
    assert (feed.media_type, feed.headers["cache-control"]) == ("text/event-stream", "no-cache")
    events = aiter(feed.body_iterator)

    first = dict(fields(await next_event(events)))
    assert (first["event"], first["id"]) == ("ranking", "1")
    assert '"respondents":1' in first["data"]

    await scoring.count(enriched("r2", "p2", 2, opens={"d-organs": Priority.USEFUL}))
    second = dict(fields(await next_event(events)))
    assert (second["event"], second["id"]) == ("ranking", "2")
    assert '"respondents":2' in second["data"]

    scoring.clock.now = CONSULTATION.closes_at
    with pytest.raises(StopAsyncIteration):
        await next_event(events)


async def test_the_feed_stops_when_the_client_goes_away(scoring: Scoring) -> None:
    connection = Connection()
    feed = await scoring.api.ranking_stream(connection, "c1", authorization=f"Bearer {ADMIN}")  # type: ignore[arg-type]
    events = aiter(feed.body_iterator)
    assert dict(fields(await next_event(events)))["id"] == "0"
    connection.gone = True
    with pytest.raises(StopAsyncIteration):
        await next_event(events)

"""Wiring of the scoring service: broker, router, MongoDB, consultations view, rankings API."""

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from services.scoring.domain import counted_ballot, exclusions_in_force, filtered, method, rank, with_catalogue
from services.scoring.handlers import SERVICE, ScoringMetrics, build_router
from services.scoring.intervals import LiveIntervals
from services.scoring.repository import MongoScoringRepository
from services.scoring.settings import ScoringSettings
from shared.contracts import (
    ConsultationDefined,
    Contract,
    DatasetCatalogued,
    DatasetRecord,
    ExclusionInForce,
    Profile,
    RankingKind,
    RankingPage,
    RankingView,
    utc_now,
)
from shared.http import ProblemError, problem_responses, require_admin, service_app
from shared.kafka import BrokerPublisher, StateView, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS, CONSULTATIONS

MAX_PAGE = 10_000
VIEW_DOC = (
    "raw: every counted respondent; filtered: without the respondents of the clusters staff excluded. "
    "By default filtered once a cluster of the consultation is excluded, else raw."
)


class ConsultationExclusions(Contract):
    """The clusters of a consultation set aside now, as scoring applies them."""

    consultation_id: str
    exclusions: list[ExclusionInForce] = Field(description="Each cluster whose latest decision is exclude, by id.")


def create_app(settings: ScoringSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = ScoringMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoScoringRepository(mongo, settings.mongo_database)
    live_intervals = LiveIntervals(
        repository, settings.weights, settings.live_resamples, every_s=settings.live_intervals_every_s
    )
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = StateView(settings.kafka_bootstrap, CATALOGUE_DATASETS, DatasetCatalogued, logger)

    def current_dataset(dataset_id: str) -> DatasetRecord | None:
        entry = catalogue.get(dataset_id)
        return None if entry is None or entry.retired else entry.dataset

    broker = make_broker(settings, registry, SERVICE)
    stopping = asyncio.Event()
    broker.include_router(
        build_router(settings, repository, BrokerPublisher(broker), consultations.get, metrics, stopping)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to MongoDB", repository.ensure_indexes, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        await retry_until("read the catalogue", catalogue.start, settings.startup_timeout_s, logger)
        await retry_until("connect to Kafka", broker.start, settings.startup_timeout_s, logger)
        yield
        stopping.set()  # a batch retrying in place gives up, uncommitted, so the consumer can stop
        await broker.stop()
        await consultations.stop()
        await catalogue.stop()
        await mongo.close()

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    async def mongo_ready() -> bool:
        return await mongo_ping(mongo)

    async def views_ready() -> bool:
        return consultations.ready.is_set() and catalogue.ready.is_set()

    app = service_app(
        SERVICE,
        lifespan,
        {"kafka": broker_ready, "mongodb": mongo_ready, "consultations": views_ready},
        registry,
    )

    def may_read(consultation_id: str, authorization: str | None) -> None:
        """Live rankings are for staff (the administrators' token, which the workspace uses), unless the
        consultation made them public while it is open: after the close, nobody else reads them before the
        publisher publishes the results."""
        if authorization is not None:
            require_admin(authorization, settings.admin_token.get_secret_value())
            return
        consultation = consultations.get(consultation_id)
        if consultation is not None and consultation.public_rankings and consultation.is_open_at(utc_now()):
            return
        raise ProblemError(
            401,
            "Unauthorized",
            "Les classements en direct sont réservés aux agents. / Live rankings are for staff only.",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def page_of(
        consultation_id: str,
        kind: RankingKind,
        profile: Profile | None,
        limit: int,
        offset: int,
        view: RankingView | None,
    ) -> tuple[RankingPage, int]:
        if consultations.get(consultation_id) is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        totals = await repository.totals(consultation_id)
        if view is None:
            view = RankingView.FILTERED if totals.excluded_clusters else RankingView.RAW
        rows = await repository.rows(consultation_id, kind)
        respondents = totals.respondents
        if view is RankingView.FILTERED and totals.exclusions:
            rows = filtered(rows, await repository.excluded_rows(consultation_id, kind))
            respondents -= totals.excluded_respondents
        ranked = rank(kind, rows, settings.weights, profile)
        items = with_catalogue(ranked[offset : offset + limit], current_dataset)
        bootstrap = None
        if profile is None:  # intervals resample the whole ranking, not one profile's part of it
            computed = await live_intervals.at(consultation_id, view, totals.revision)
            items, bootstrap = computed.rows(kind, items), computed.method
        page = RankingPage(
            consultation_id=consultation_id,
            kind=kind,
            as_of=totals.as_of,
            respondents=respondents,
            total=len(ranked),
            offset=offset,
            limit=limit,
            method=method(settings.weights, bootstrap),
            items=items,
            view=view,
            excluded_respondents=totals.excluded_respondents,
        )
        return page, totals.revision

    @app.get(
        "/v1/consultations/{consultation_id}/rankings",
        responses={**problem_responses(401, 404), 304: {"description": "Not Modified"}},
        tags=["rankings"],
    )
    async def rankings(
        consultation_id: str,
        kind: RankingKind = RankingKind.OPEN,
        profile: Profile | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        view: Annotated[RankingView | None, Query(description=VIEW_DOC)] = None,
        if_none_match: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """A live ranking: to open, to improve, or suggestions; optionally for one profile; raw or filtered
        (without the clusters staff excluded). For staff (the administrators' bearer token) unless the
        consultation's rankings are public while it is open. The `ETag` changes with the content: send it
        back in `If-None-Match` to get `304` when nothing moved."""
        may_read(consultation_id, authorization)
        page, _ = await page_of(consultation_id, kind, profile, limit, offset, view)
        body = page.model_dump_json().encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.get(
        "/v1/consultations/{consultation_id}/rankings/stream",
        responses={**problem_responses(401, 404), 200: {"content": {"text/event-stream": {}}}},
        tags=["rankings"],
    )
    async def ranking_stream(
        request: Request,
        consultation_id: str,
        kind: RankingKind = RankingKind.OPEN,
        profile: Profile | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        view: Annotated[RankingView | None, Query(description=VIEW_DOC)] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: the ranking page now, then again each time it changes, an exclusion applied
        or cleared included (same access and views as the rankings; a public feed ends at the close)."""
        may_read(consultation_id, authorization)
        await page_of(consultation_id, kind, profile, limit, 0, view)  # 404 before the stream starts

        def still_allowed() -> bool:
            try:
                may_read(consultation_id, authorization)
            except ProblemError:
                return False
            return True

        async def events() -> AsyncIterator[bytes]:
            sent_revision, quiet_since = None, time.monotonic()
            while still_allowed() and not await request.is_disconnected():
                totals = await repository.totals(consultation_id)
                if totals.revision != sent_revision:
                    page, sent_revision = await page_of(consultation_id, kind, profile, limit, 0, view)
                    yield f"event: ranking\nid: {sent_revision}\ndata: {page.model_dump_json()}\n\n".encode()
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 15:
                    yield b": still here\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(settings.stream_poll_s)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get(
        "/v1/consultations/{consultation_id}/ballots",
        responses={**problem_responses(401, 404), 200: {"content": {"application/x-ndjson": {}}}},
        tags=["rankings"],
    )
    async def ballots(consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> StreamingResponse:
        """Administrators (the publisher): every respondent's counted submission, one JSON object per
        line (`CountedBallot`), without respondent identifiers, each naming the excluded cluster its
        respondent is set aside for (`exclusion`), if any. The published archive is built from it."""
        require_admin(authorization, settings.admin_token.get_secret_value())
        if consultations.get(consultation_id) is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        attributed = await repository.attribution(consultation_id)

        async def lines() -> AsyncIterator[bytes]:
            chunk: list[bytes] = []
            async for ballot in repository.ballots(consultation_id):
                if ballot.withdrawn:
                    continue  # a respondent who withdrew is in no archive
                exclusion = attributed.get(ballot.respondent_key)
                chunk.append(counted_ballot(ballot, exclusion).model_dump_json().encode() + b"\n")
                if len(chunk) >= 1000:
                    yield b"".join(chunk)
                    chunk = []
            yield b"".join(chunk)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get(
        "/v1/consultations/{consultation_id}/exclusions",
        responses=problem_responses(401, 404),
        tags=["rankings"],
    )
    async def exclusions(
        consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> ConsultationExclusions:
        """Administrators (the publisher, the workspace): the clusters set aside now, by cluster id, each
        with the reason, signals and settings of staff's latest decision and the counted respondents
        attributed to it (a respondent in several excluded clusters counts in the first by id)."""
        require_admin(authorization, settings.admin_token.get_secret_value())
        if consultations.get(consultation_id) is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        clusters = await repository.load_clusters([consultation_id])
        attributed = await repository.attribution(consultation_id)
        ballots = await repository.load_ballots((consultation_id, key) for key in attributed)
        return ConsultationExclusions(
            consultation_id=consultation_id,
            exclusions=exclusions_in_force(clusters.values(), attributed, ballots.values()),
        )

    return app

"""Wiring of the scoring service: broker, router, MongoDB, consultations view, rankings API."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query

from services.scoring.domain import method, rank, with_catalogue
from services.scoring.handlers import SERVICE, ScoringMetrics, build_router
from services.scoring.repository import MongoScoringRepository
from services.scoring.settings import ScoringSettings
from shared.contracts import (
    ConsultationDefined,
    DatasetCatalogued,
    DatasetRecord,
    Profile,
    RankingKind,
    RankingPage,
)
from shared.http import service_app
from shared.kafka import BrokerPublisher, StateView, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS, CONSULTATIONS

MAX_PAGE = 10_000


def create_app(settings: ScoringSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = ScoringMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoScoringRepository(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = StateView(settings.kafka_bootstrap, CATALOGUE_DATASETS, DatasetCatalogued, logger)

    def current_dataset(dataset_id: str) -> DatasetRecord | None:
        entry = catalogue.get(dataset_id)
        return None if entry is None or entry.retired else entry.dataset

    broker = make_broker(settings, registry, SERVICE)
    broker.include_router(build_router(settings, repository, BrokerPublisher(broker), consultations.get, metrics))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to MongoDB", repository.ensure_indexes, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        await retry_until("read the catalogue", catalogue.start, settings.startup_timeout_s, logger)
        await retry_until("connect to Kafka", broker.start, settings.startup_timeout_s, logger)
        yield
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

    @app.get("/v1/consultations/{consultation_id}/rankings")
    async def rankings(
        consultation_id: str,
        kind: RankingKind = RankingKind.OPEN,
        profile: Profile | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> RankingPage:
        """A live ranking: to open, to improve, or suggestions; optionally for one profile."""
        if consultations.get(consultation_id) is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        ranked = rank(kind, await repository.rows(consultation_id, kind), settings.weights, profile)
        totals = await repository.totals(consultation_id)
        return RankingPage(
            consultation_id=consultation_id,
            kind=kind,
            as_of=totals.as_of,
            respondents=totals.respondents,
            total=len(ranked),
            offset=offset,
            limit=limit,
            method=method(settings.weights),
            items=with_catalogue(ranked[offset : offset + limit], current_dataset),
        )

    return app

"""Wiring of the publisher: consultations view, closing loop, MongoDB, results API."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, HTTPException

from services.publisher.closing import Closer, PublisherMetrics, ScoringClient
from services.publisher.kafka_io import KafkaProgress, ResultsEmitter
from services.publisher.repository import MongoResultsRepository
from services.publisher.settings import PublisherSettings
from shared.contracts import ConsultationDefined, ResultsPublished
from shared.http import service_app
from shared.kafka import StateView, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.topics import CONSULTATIONS

SERVICE = "publisher"


def create_app(settings: PublisherSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoResultsRepository(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    scoring = ScoringClient(settings.scoring_url)
    closer = Closer(
        consultations.items,
        KafkaProgress(settings.kafka_bootstrap),
        scoring,
        ResultsEmitter(settings.kafka_bootstrap, logger),
        repository,
        settle=timedelta(seconds=settings.kafka_produce_timeout_s + 1),
        poll_interval_s=settings.poll_interval_s,
        metrics=PublisherMetrics(registry),
        logger=logger,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to MongoDB", repository.ping, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        await consultations.ready.wait()
        closing = asyncio.create_task(closer.run_forever(), name="closer")
        yield
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        await consultations.stop()
        await scoring.aclose()
        await mongo.close()

    async def mongo_ready() -> bool:
        return await mongo_ping(mongo)

    async def views_ready() -> bool:
        return consultations.ready.is_set()

    app = service_app(SERVICE, lifespan, {"mongodb": mongo_ready, "consultations": views_ready}, registry)

    @app.get("/v1/consultations/{consultation_id}/results")
    async def results(consultation_id: str) -> ResultsPublished:
        """The frozen results of a closed consultation."""
        found = await repository.get(consultation_id)
        if found is None:
            detail = (
                "No such consultation."
                if consultations.get(consultation_id) is None
                else "Results are published once the consultation has closed and every accepted response is counted."
            )
            raise HTTPException(404, detail)
        return found

    return app

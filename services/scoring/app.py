"""Wiring of the scoring service: broker, router, MongoDB, consultations and catalogue views, rankings API."""

import asyncio
import logging

from fastapi import FastAPI

from services.scoring.api import ScoringApi
from services.scoring.handlers import SERVICE, ScoringMetrics, build_router
from services.scoring.intervals import LiveIntervals
from services.scoring.rankings import LiveRankings
from services.scoring.repository import MongoScoringRepository
from services.scoring.settings import ScoringSettings
from shared.catalogue_view import CatalogueView
from shared.contracts import ConsultationDefined
from shared.http import service_app
from shared.kafka import BrokerPublisher, StateView, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import Startup
from shared.topics import CONSULTATIONS


def create_app(settings: ScoringSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = ScoringMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoScoringRepository(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = CatalogueView(settings.kafka_bootstrap, logger)
    broker = make_broker(settings, registry, SERVICE)
    # Set at shutdown, first: a batch retrying in place gives up, uncommitted, so the consumer can stop.
    stopping = asyncio.Event()
    broker.include_router(
        build_router(
            settings, repository, BrokerPublisher(broker), consultations.get, metrics, stopping, consultations.sync
        )
    )
    startup = (
        Startup(settings.startup_timeout_s, logger)
        .step(lambda: prepare_topics(settings, logger))
        .retry("connect to MongoDB", repository.ensure_indexes, stop=mongo.close)
        .view("read consultations", consultations)
        .view("read the catalogue", catalogue)
        .retry("connect to Kafka", broker.start, stop=broker.stop)
        .step(stopping.clear, stop=stopping.set)
    )

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    checks = {"kafka": broker_ready, "mongodb": lambda: mongo_ping(mongo), "consultations": startup.views_ready}
    app = service_app(SERVICE, startup.lifespan, checks, registry)
    intervals = LiveIntervals(
        repository, settings.weights, settings.live_resamples, every_s=settings.live_intervals_every_s
    )
    rankings = LiveRankings(repository, consultations.get, catalogue.dataset, intervals, settings.weights)
    api = ScoringApi(settings.admin_token.get_secret_value(), rankings, settings.stream_poll_s)
    app.include_router(api.router())
    return app

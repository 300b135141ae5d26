"""Wiring of the scoring service: broker, routers (responses, decisions, the close's tally requests), MongoDB,
consultations and catalogue views, rankings API."""

import asyncio
import logging

from fastapi import FastAPI

from services.scoring.api import ScoringApi
from services.scoring.handlers import SERVICE, ScoringMetrics, build_router
from services.scoring.intervals import LiveIntervals
from services.scoring.rankings import LiveRankings
from services.scoring.repository import MongoScoringRepository
from services.scoring.settings import ScoringSettings
from services.scoring.tallies import TallyReplier, tally_router
from shared.catalogue_view import CatalogueView
from shared.contracts import ConsultationDefined
from shared.http import service_app
from shared.kafka import BrokerPublisher, StateView, committed_offsets, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import Startup
from shared.topics import CONSULTATIONS, MAX_TALLY_BYTES, TALLY_COMPRESSION


def create_app(settings: ScoringSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = ScoringMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoScoringRepository(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = CatalogueView(settings.kafka_bootstrap, logger)
    # The tallies, the one large message scoring sends, are compressed.
    broker = make_broker(
        settings, registry, SERVICE, compression_type=TALLY_COMPRESSION, max_request_size=MAX_TALLY_BYTES
    )
    # Set at shutdown, first: a batch retrying in place gives up, uncommitted, so the consumer can stop.
    stopping = asyncio.Event()
    publisher = BrokerPublisher(broker)
    broker.include_router(
        build_router(settings, repository, publisher, consultations.get, metrics, stopping, consultations.sync)
    )
    intervals = LiveIntervals(
        repository, settings.weights, settings.live_resamples, every_s=settings.live_intervals_every_s
    )
    rankings = LiveRankings(repository, consultations.get, catalogue.dataset, intervals, settings.weights)
    group = settings.consumer_group
    replier = TallyReplier(
        rankings.tallies,
        lambda: committed_offsets(settings.kafka_bootstrap, group),
        publisher,
        registry,
        logger,
        stopping,
        settings.tally_wait_s,
    )
    broker.include_router(tally_router(settings, replier))
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
    api = ScoringApi(settings.admin_token.get_secret_value(), rankings, settings.stream_poll_s)
    app.include_router(api.router())
    return app

"""Wiring of the catalogue service: sources, refresh, catalogue state on Kafka, enrichment, HTTP API."""

import logging
from typing import Any

from services.catalogue.api import api_router
from services.catalogue.domain import Catalogue
from services.catalogue.handlers import SERVICE, CatalogueHolder, CatalogueMetrics, Refresher, build_router
from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import load_sources
from shared.catalogue_view import CatalogueView
from shared.http import service_app
from shared.kafka import BrokerPublisher, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.service import Startup


def create_app(settings: CatalogueSettings) -> Any:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = CatalogueMetrics(registry)
    holder = CatalogueHolder(Catalogue([]))
    published = CatalogueView(settings.kafka_bootstrap, logger)
    broker = make_broker(settings, registry, SERVICE)
    publisher = BrokerPublisher(broker)
    broker.include_router(build_router(settings, holder, publisher, metrics))
    refresher = Refresher(
        lambda: load_sources(settings), holder, published, publisher, metrics, logger, settings.refresh_interval_s
    )
    startup = (
        Startup(settings.startup_timeout_s, logger)
        .step(lambda: prepare_topics(settings, logger))
        .view("read the published catalogue", published, wait=True)
        .retry("connect to Kafka", broker.start, stop=broker.stop)
        .step(refresher.refresh)
        .task("catalogue-refresh", refresher.refresh_periodically)
    )

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    app = service_app(SERVICE, startup.lifespan, {"kafka": broker_ready}, registry)
    app.include_router(api_router(holder, refresher.refresh, settings.admin_token.get_secret_value()))
    return app

"""Wiring of the staff workspace: MongoDB, the responses it follows, the other services' APIs, pages."""

import asyncio
import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.backoffice.account_pages import AccountPages
from services.backoffice.auth import StaffAuth
from services.backoffice.cluster_pages import ClusterPages, clusters_api
from services.backoffice.commitment_pages import CommitmentPages, commitments_api
from services.backoffice.commitments import Commitments
from services.backoffice.consultation_pages import ConsultationPages
from services.backoffice.exclusions import Exclusions
from services.backoffice.handlers import SERVICE, BackofficeMetrics, build_router
from services.backoffice.lifecycle import prepare_store, stop_serving
from services.backoffice.live_pages import LivePages
from services.backoffice.notifications import FollowUpService
from services.backoffice.repository import MongoContributionRepository, MongoStaffRepository
from services.backoffice.settings import BackofficeSettings
from services.backoffice.text_pages import TextPages
from services.backoffice.upstream import Upstream
from services.backoffice.views import Views
from services.backoffice.web import HERE, Guard, Pages, Ports, install_page_handlers
from shared.http import service_app
from shared.kafka import BrokerPublisher, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import Startup
from shared.web import DSFR_URL, dsfr_static


def create_app(settings: BackofficeSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = BackofficeMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    staff = MongoStaffRepository(mongo, settings.mongo_database)
    contributions = MongoContributionRepository(mongo, settings.mongo_database)
    # A change to the catalogue may fulfil commitments: the callback reaches those built below from the views.
    views = Views.follow(settings.kafka_bootstrap, logger, lambda key, entry: commitments.dataset_changed(key, entry))
    consultations = views.consultations
    upstream = Upstream(settings)
    auth = StaffAuth(staff, settings)
    stopping = asyncio.Event()
    broker = make_broker(settings, registry, SERVICE)
    publisher = BrokerPublisher(broker)
    commitments = Commitments(
        views.commitments, views.excerpts, views.catalogue, publisher, staff, metrics.action, logger
    )
    broker.include_router(build_router(settings, contributions, publisher, metrics, stopping))
    exclusions = Exclusions(
        views.exclusions, consultations, contributions, publisher, staff, settings.detection, metrics.action, logger
    )
    followups = FollowUpService(settings, mongo, registry, consultations, broker, metrics.batch_retries.inc, stopping)
    indexed = (staff, contributions, followups.repository)
    startup = (
        Startup(settings.startup_timeout_s, logger)
        .step(lambda: prepare_topics(settings, logger))
        .retry("prepare MongoDB", lambda: prepare_store(indexed, auth, logger), stop=mongo.close)
        .at_shutdown(upstream.close)
        .retry("connect to Kafka", followups.start, stop=followups.stop)
        .retry("connect to Kafka", broker.start, stop=broker.stop)
    )
    for name, view in views.in_start_order().items():
        startup.view(f"read {name}", view, wait=True, within_s=settings.startup_timeout_s)
    # Registered last, so run first at shutdown: handlers told to stop, commitments being published awaited.
    startup.at_shutdown(lambda: stop_serving(stopping, commitments))
    checks = {
        "kafka": lambda: broker.ping(timeout=2.0),
        "mongodb": lambda: mongo_ping(mongo),
        "consultations": startup.views_ready,
    }
    app = service_app(SERVICE, startup.lifespan, checks, registry)
    pages = Pages(settings)
    install_page_handlers(app, pages)
    app.mount(DSFR_URL, dsfr_static(), name="dsfr")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    guard = Guard(auth, pages)
    ports = Ports(
        settings, auth, staff, contributions, upstream, consultations, metrics, stopping, commitments, exclusions
    )
    for group in (AccountPages, ConsultationPages, LivePages, TextPages, CommitmentPages, ClusterPages):
        app.include_router(group(ports, pages, guard).router())
    app.include_router(commitments_api(settings, commitments, consultations, contributions))
    app.include_router(clusters_api(settings, exclusions, consultations))
    return app

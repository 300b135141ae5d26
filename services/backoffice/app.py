"""Wiring of the staff workspace: MongoDB, the responses it follows, the other services' APIs, pages."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from services.backoffice.live_pages import LivePages
from services.backoffice.notifications import FollowUpService
from services.backoffice.repository import MongoContributionRepository, MongoStaffRepository
from services.backoffice.settings import BackofficeSettings
from services.backoffice.text_pages import TextPages
from services.backoffice.upstream import Upstream
from services.backoffice.views import Views
from services.backoffice.web import HERE, Guard, Pages, Ports, install_page_handlers
from shared.contracts import utc_now
from shared.http import service_app
from shared.kafka import BrokerPublisher, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.web import DSFR_URL, dsfr_static


def create_app(settings: BackofficeSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = BackofficeMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    staff = MongoStaffRepository(mongo, settings.mongo_database)
    contributions = MongoContributionRepository(mongo, settings.mongo_database)
    views = Views.follow(settings.kafka_bootstrap, logger, lambda key, entry: commitments.dataset_changed(key, entry))
    consultations = views.consultations
    upstream = Upstream(settings)
    auth = StaffAuth(staff, settings)
    stopping = asyncio.Event()
    broker = make_broker(settings, registry, SERVICE)
    commitments = Commitments(
        views.commitments,
        views.excerpts,
        views.catalogue,
        BrokerPublisher(broker),
        staff,
        metrics.action,
        logger,
    )
    broker.include_router(build_router(settings, contributions, BrokerPublisher(broker), metrics, stopping))
    exclusions = Exclusions(
        views.exclusions,
        consultations,
        contributions,
        BrokerPublisher(broker),
        staff,
        settings.detection,
        metrics.action,
        logger,
    )
    followups = FollowUpService(settings, mongo, registry, consultations, broker, metrics.batch_retries.inc, stopping)

    async def prepare_store() -> None:
        await staff.ensure_indexes()
        await contributions.ensure_indexes()
        await followups.repository.ensure_indexes()
        if await auth.bootstrap(utc_now()):
            logger.info("staff account created from COD_STAFF_BOOTSTRAP")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("prepare MongoDB", prepare_store, settings.startup_timeout_s, logger)
        await retry_until("connect to Kafka", followups.start, settings.startup_timeout_s, logger)
        await retry_until("connect to Kafka", broker.start, settings.startup_timeout_s, logger)
        for name, view in views.in_start_order().items():
            await retry_until(f"read {name}", view.start, settings.startup_timeout_s, logger)
            await asyncio.wait_for(view.ready.wait(), settings.startup_timeout_s)
        yield
        stopping.set()  # live pages end their streams; a batch retrying in place gives up, uncommitted
        await commitments.drain()
        for view in views.in_start_order().values():
            await view.stop()
        await broker.stop()
        await followups.stop()
        await upstream.close()
        await mongo.close()

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    async def mongo_ready() -> bool:
        return await mongo_ping(mongo)

    async def views_ready() -> bool:
        return all(view.ready.is_set() for view in views.in_start_order().values())

    app = service_app(
        SERVICE, lifespan, {"kafka": broker_ready, "mongodb": mongo_ready, "consultations": views_ready}, registry
    )
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

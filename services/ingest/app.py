"""Wiring of ingest: the HTTP front door, the Kafka producer (acks=all), its views and store."""

import logging
import socket
from datetime import timedelta
from typing import Any

from services.ingest.api import IngestApi
from services.ingest.domain import RateLimiter
from services.ingest.followup import FollowUps, followup_router
from services.ingest.gate import Gate
from services.ingest.handlers import SERVICE, Definitions, IngestMetrics, Submissions
from services.ingest.outbox import GroupCommitProducer
from services.ingest.repository import MongoEmailIdentity, MongoRespondentStore
from services.ingest.settings import IngestSettings
from services.ingest.web import static_files, web_router
from shared.catalogue_view import CatalogueView
from shared.contracts import ConsultationDefined
from shared.http import service_app
from shared.kafka import StateView, prepare_topics
from shared.mail import SmtpMailer
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import Startup
from shared.topics import CONSULTATIONS
from shared.web import DSFR_URL, dsfr_static


def create_app(settings: IngestSettings) -> Any:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = IngestMetrics(registry)
    outbox = GroupCommitProducer(
        settings.kafka_bootstrap,
        settings.transactional_id(socket.gethostname()),
        settings.kafka_produce_timeout_s,
        logger,
        settings.commit_lanes,
    )
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    store = MongoRespondentStore(mongo, settings.mongo_database, logger)
    identity = MongoEmailIdentity(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = CatalogueView(settings.kafka_bootstrap, logger)
    secret = settings.pseudonym_secret.get_secret_value().encode()
    pending_for = timedelta(hours=settings.pending_hours)
    submissions = Submissions(
        secret,
        consultations.get,
        catalogue.status,
        outbox.send_event,
        store,
        metrics,
        logger,
        identity,
        SmtpMailer(settings),
        settings.confirm_url,
        pending_for,
        deadline_s=settings.accept_deadline_s,
        consultations_synced=consultations.sync,
    )
    startup = (
        Startup(settings.startup_timeout_s, logger)
        .step(lambda: prepare_topics(settings, logger))
        .retry("connect to MongoDB", store.ping, stop=mongo.close)
        .retry("prepare MongoDB", identity.ensure_indexes)
        .retry("connect to Kafka", outbox.start, stop=outbox.stop)
        .view("read consultations", consultations)
        .view("read the catalogue", catalogue)
        .step(store.start, stop=store.stop)
    )
    checks = {"kafka": outbox.ready, "mongodb": lambda: mongo_ping(mongo), "views": startup.views_ready}
    app = service_app(SERVICE, startup.lifespan, checks, registry)
    app.include_router(web_router(settings, submissions, consultations, catalogue, settings.amend_url))
    followups = FollowUps(settings.followup(), submissions.latest_form, outbox.send, logger)
    app.include_router(followup_router(followups, consultations.get, settings.amend_url))
    # Starlette matches mounts in order: the DSFR's prefix must come before the wider "/static".
    app.mount(DSFR_URL, dsfr_static(), name="dsfr")
    app.mount("/static", static_files(), name="static")
    admin_token = settings.admin_token.get_secret_value()
    definitions = Definitions(outbox.send_event, consultations, deadline_s=settings.accept_deadline_s)
    api = IngestApi(
        admin_token, settings.trusted_proxies, submissions, definitions, consultations.get, settings.amend_url
    )
    app.include_router(api.router())
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    return Gate(app, settings.max_body_bytes, limiter, settings.trusted_proxies, refused=metrics.refused)

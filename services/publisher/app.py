"""Wiring of the publisher: consultations, catalogue, commitments and excerpts views, closing loop (with
scoring's tallies asked for over Kafka), republishing, MongoDB, results API, public follow-up."""

import logging
from datetime import timedelta

from fastapi import FastAPI

from services.publisher.api import ResultsApi
from services.publisher.closing import Closer, PublisherMetrics, dataset_refs
from services.publisher.kafka_io import KafkaProgress, LogFollower, ResultsEmitter, TallyChannel
from services.publisher.ledger import Ledger
from services.publisher.publications import Publications
from services.publisher.report import ReportRenderer
from services.publisher.repository import MongoResultsRepository
from services.publisher.republishing import FollowUpInputs, Republisher
from services.publisher.settings import PublisherSettings
from services.publisher.web import follow_up_router
from shared.catalogue_view import CatalogueView
from shared.contracts import ConsultationDefined
from shared.http import service_app
from shared.kafka import StateView, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import Startup
from shared.topics import CONSULTATIONS
from shared.web import DSFR_URL, dsfr_static

SERVICE = "publisher"


def create_app(settings: PublisherSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = PublisherMetrics(registry)
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoResultsRepository(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = CatalogueView(settings.kafka_bootstrap, logger)
    admin_token = settings.admin_token.get_secret_value()
    tallies = TallyChannel(settings.kafka_bootstrap, settings.tally_timeout_s, logger)
    follower = LogFollower(settings.kafka_bootstrap, Ledger(consultations.get), registry, logger, consultations.sync)
    report = ReportRenderer()
    # The inputs' views report changes from their first record on; the republisher is built next.
    inputs = FollowUpInputs(settings.kafka_bootstrap, consultations.items, lambda cid: republisher.changed(cid), logger)
    republisher = Republisher(repository, inputs.follow_up, report, metrics, logger)
    closer = Closer(
        consultations.items,
        KafkaProgress(settings.kafka_bootstrap),
        tallies.client,
        follower.ledger,
        ResultsEmitter(settings.kafka_bootstrap, logger),
        repository,
        dataset_refs(catalogue.dataset),
        settings.code_version,
        report,
        settle=timedelta(seconds=settings.settle_s),
        poll_interval_s=settings.poll_interval_s,
        metrics=metrics,
        logger=logger,
        follow_up=inputs.follow_up,
        stored=republisher.changed,
        min_cell=settings.min_cell,
        resamples=settings.bootstrap_resamples,
    )
    startup = (
        Startup(settings.startup_timeout_s, logger)
        .step(lambda: prepare_topics(settings, logger))
        .retry("connect to MongoDB", repository.ensure_indexes, stop=mongo.close)
        .view("read consultations", consultations)
        .view("read the catalogue", catalogue)
        .view("read commitments", inputs.commitments)
        .view("read excerpts", inputs.excerpts)
        # The four views read at once, and all caught up before the closer and the republisher read them.
        .caught_up()
        .retry("follow the archive's topics", follower.start, stop=follower.stop)
        .retry("follow scoring's tallies", tallies.start, stop=tallies.stop)
        .step(lambda: republisher.catch_up(consultations.items))
        .task("closer", closer.run_forever)
        .task("lag", lambda: closer.measure_lag_forever(settings.lag_interval_s))
        .task("republisher", republisher.run_forever)
    )
    checks = {"mongodb": lambda: mongo_ping(mongo), "consultations": startup.views_ready}
    app = service_app(SERVICE, startup.lifespan, checks, registry)
    app.mount(DSFR_URL, dsfr_static(), name="dsfr")
    publications = Publications(
        repository, lambda cid: cid in consultations.items, settings.publication_delay_days, admin_token
    )
    app.include_router(follow_up_router(publications, inputs.follow_up))
    app.include_router(ResultsApi(publications).router())
    return app

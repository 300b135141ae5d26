"""Wiring of the publisher: consultations, commitments and excerpts views, closing loop, republishing,
MongoDB, results API, public follow-up."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Response

from services.publisher.archive import DatasetRef, FollowUp, follow_up_of
from services.publisher.closing import Closer, PublisherMetrics, ScoringClient
from services.publisher.files import MEDIA_TYPES
from services.publisher.kafka_io import KafkaProgress, ResultsEmitter
from services.publisher.publications import Embargoed, NotPublished, Publications
from services.publisher.report import ReportRenderer
from services.publisher.repository import MongoResultsRepository, Publication
from services.publisher.republishing import Republisher
from services.publisher.settings import PublisherSettings
from services.publisher.web import follow_up_router
from shared.contracts import (
    CommitmentRecorded,
    ConsultationDefined,
    DatasetCatalogued,
    ExcerptApproved,
    ResultsPublished,
    utc_now,
)
from shared.http import ProblemError, problem_responses, require_admin, service_app
from shared.kafka import StateView, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS, COMMITMENTS, CONSULTATIONS, EXCERPTS
from shared.web import DSFR_URL, dsfr_static

SERVICE = "publisher"


def create_app(settings: PublisherSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    repository = MongoResultsRepository(mongo, settings.mongo_database)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = StateView(settings.kafka_bootstrap, CATALOGUE_DATASETS, DatasetCatalogued, logger)
    scoring = ScoringClient(settings.scoring_url, settings.admin_token.get_secret_value())
    admin_token = settings.admin_token.get_secret_value()
    metrics = PublisherMetrics(registry)
    report = ReportRenderer()

    def changed(key: str, _: object) -> None:
        # Keys are `<consultation_id>:<id>`; a tombstone carries no value to read the consultation from.
        for cid in consultations.items:
            if key.startswith(cid + ":"):
                republisher.changed(cid)

    commitments = StateView(settings.kafka_bootstrap, COMMITMENTS, CommitmentRecorded, logger, on_change=changed)
    excerpts = StateView(settings.kafka_bootstrap, EXCERPTS, ExcerptApproved, logger, on_change=changed)
    views = (consultations, catalogue, commitments, excerpts)

    def follow_up(results: ResultsPublished) -> FollowUp:
        return follow_up_of(results, commitments.items.values(), excerpts.items.values())

    republisher = Republisher(repository, follow_up, report, metrics, logger)
    publications = Publications(
        repository, lambda cid: consultations.get(cid) is not None, settings.publication_delay_days, admin_token
    )

    def dataset(dataset_id: str) -> DatasetRef | None:
        entry = catalogue.get(dataset_id)
        if entry is None or entry.retired:
            return None
        return DatasetRef(dataset_id, entry.dataset.title, entry.dataset.status)

    closer = Closer(
        consultations.items,
        KafkaProgress(settings.kafka_bootstrap),
        scoring,
        ResultsEmitter(settings.kafka_bootstrap, logger),
        repository,
        dataset,
        settings.code_version,
        report,
        settle=timedelta(seconds=settings.kafka_produce_timeout_s + 1),
        poll_interval_s=settings.poll_interval_s,
        metrics=metrics,
        logger=logger,
        follow_up=follow_up,
        stored=republisher.changed,
        min_cell=settings.min_cell,
        resamples=settings.bootstrap_resamples,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to MongoDB", repository.ensure_indexes, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        await retry_until("read the catalogue", catalogue.start, settings.startup_timeout_s, logger)
        await retry_until("read commitments", commitments.start, settings.startup_timeout_s, logger)
        await retry_until("read excerpts", excerpts.start, settings.startup_timeout_s, logger)
        for view in views:
            await view.ready.wait()
        # Whatever changed while no publisher ran (and files stored by an earlier version) is caught up here.
        for cid in list(consultations.items):
            republisher.changed(cid)
        tasks = [
            asyncio.create_task(closer.run_forever(), name="closer"),
            asyncio.create_task(closer.measure_lag_forever(settings.lag_interval_s), name="lag"),
            asyncio.create_task(republisher.run_forever(), name="republisher"),
        ]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for view in views:
            await view.stop()
        await scoring.aclose()
        await mongo.close()

    async def mongo_ready() -> bool:
        return await mongo_ping(mongo)

    async def views_ready() -> bool:
        return all(view.ready.is_set() for view in views)

    app = service_app(SERVICE, lifespan, {"mongodb": mongo_ready, "consultations": views_ready}, registry)
    app.mount(DSFR_URL, dsfr_static(), name="dsfr")
    app.include_router(follow_up_router(publications, follow_up))

    async def publication(consultation_id: str, authorization: str | None) -> Publication:
        """The publication, if this caller may see it: administrators at once, the public from the
        publication date."""
        try:
            return await publications.visible(consultation_id, authorization)
        except NotPublished as error:
            raise HTTPException(404, str(error)) from None
        except Embargoed as error:
            public = error.public_from
            raise ProblemError(
                403,
                "Embargoed",
                f"Les résultats seront publics le {public:%d/%m/%Y à %H:%M} UTC. "
                f"The results are public from {public.isoformat()}.",
                extensions={"public_from": public.isoformat()},
            ) from None

    embargo_responses = problem_responses(401, 403, 404)

    @app.get("/v1/consultations/{consultation_id}/results", responses=embargo_responses, tags=["results"])
    async def results(consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> ResultsPublished:
        """The results of a closed consultation as published (`resultats.json`: ranked from the public
        archive, small breakdown cells left out), public from the publication date. Administrators get
        the results frozen at the close, in full detail."""
        found = await publication(consultation_id, authorization)
        if publications.is_admin(authorization):
            return found.results
        return await publications.published(found)

    @app.get("/v1/consultations/{consultation_id}/results/files", responses=embargo_responses, tags=["results"])
    async def files(consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """The published files, with their size and SHA-256."""
        found = await publication(consultation_id, authorization)
        return {
            "consultation_id": consultation_id,
            "public_from": publications.public_from(found).isoformat(),
            "files": [
                {
                    "name": f.name,
                    "url": f"/v1/consultations/{consultation_id}/results/{f.name}",
                    "bytes": f.size,
                    "sha256": f.sha256,
                }
                for f in sorted(found.files.values(), key=lambda f: f.name)
            ],
        }

    @app.get("/v1/consultations/{consultation_id}/results/{name}", responses=embargo_responses, tags=["results"])
    async def results_file(
        consultation_id: str, name: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """One published file: rankings (CSV, JSON), data package, archive, method, report."""
        found = await publication(consultation_id, authorization)
        stored = found.files.get(name)
        if stored is None:
            raise HTTPException(404, f"No file {name!r}; see /v1/consultations/{consultation_id}/results/files.")
        data = await repository.file(consultation_id, stored)
        media_type = MEDIA_TYPES.get(name[name.rfind(".") :], "application/octet-stream")
        return Response(data, media_type=media_type, headers={"ETag": f'"{stored.sha256[:32]}"'})

    @app.post(
        "/v1/consultations/{consultation_id}/results/release",
        status_code=204,
        responses=problem_responses(401, 404),
        tags=["results"],
    )
    async def release(consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        """Administrators: make the results public now, before the end of the embargo."""
        require_admin(authorization, admin_token)
        if consultations.get(consultation_id) is None:
            raise HTTPException(404, "No such consultation.")
        await repository.release(consultation_id, utc_now())
        return Response(status_code=204)

    return app

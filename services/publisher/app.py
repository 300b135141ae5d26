"""Wiring of the publisher: consultations view, closing loop, MongoDB, results API."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Response

from services.publisher.closing import Closer, PublisherMetrics, ScoringClient
from services.publisher.domain import publication_at
from services.publisher.kafka_io import KafkaProgress, ResultsEmitter
from services.publisher.opendata import MEDIA_TYPES, DatasetRef
from services.publisher.report import ReportRenderer
from services.publisher.repository import MongoResultsRepository, Publication
from services.publisher.settings import PublisherSettings
from shared.contracts import ConsultationDefined, DatasetCatalogued, ResultsPublished, utc_now
from shared.http import ProblemError, problem_responses, require_admin, service_app
from shared.kafka import StateView, prepare_topics
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS, CONSULTATIONS

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
        ReportRenderer(),
        settle=timedelta(seconds=settings.kafka_produce_timeout_s + 1),
        poll_interval_s=settings.poll_interval_s,
        metrics=PublisherMetrics(registry),
        logger=logger,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to MongoDB", repository.ensure_indexes, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        await retry_until("read the catalogue", catalogue.start, settings.startup_timeout_s, logger)
        await consultations.ready.wait()
        await catalogue.ready.wait()
        tasks = [
            asyncio.create_task(closer.run_forever(), name="closer"),
            asyncio.create_task(closer.measure_lag_forever(settings.lag_interval_s), name="lag"),
        ]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await consultations.stop()
        await catalogue.stop()
        await scoring.aclose()
        await mongo.close()

    async def mongo_ready() -> bool:
        return await mongo_ping(mongo)

    async def views_ready() -> bool:
        return consultations.ready.is_set() and catalogue.ready.is_set()

    app = service_app(SERVICE, lifespan, {"mongodb": mongo_ready, "consultations": views_ready}, registry)

    def is_admin(authorization: str | None) -> bool:
        if authorization is None:
            return False
        require_admin(authorization, admin_token)  # a wrong token is refused, not taken for the public
        return True

    def public_from(found: Publication) -> datetime:
        return publication_at(found.results.closes_at, settings.publication_delay_days, found.released_at)

    async def publication(consultation_id: str, authorization: str | None) -> Publication:
        """The publication, if this caller may see it: administrators at once, the public from the
        publication date."""
        found = await repository.get(consultation_id)
        if found is None:
            detail = (
                "No such consultation."
                if consultations.get(consultation_id) is None
                else "Results are published once the consultation has closed and every accepted response is counted."
            )
            raise HTTPException(404, detail)
        public = public_from(found)
        if utc_now() < public and not is_admin(authorization):
            raise ProblemError(
                403,
                "Embargoed",
                f"Les résultats seront publics le {public:%d/%m/%Y à %H:%M} UTC. "
                f"The results are public from {public.isoformat()}.",
                extensions={"public_from": public.isoformat()},
            )
        return found

    embargo_responses = problem_responses(401, 403, 404)

    @app.get("/v1/consultations/{consultation_id}/results", responses=embargo_responses, tags=["results"])
    async def results(consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> ResultsPublished:
        """The frozen results of a closed consultation (public from the publication date)."""
        return (await publication(consultation_id, authorization)).results

    @app.get("/v1/consultations/{consultation_id}/results/files", responses=embargo_responses, tags=["results"])
    async def files(consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """The published files, with their size and SHA-256."""
        found = await publication(consultation_id, authorization)
        return {
            "consultation_id": consultation_id,
            "public_from": public_from(found).isoformat(),
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

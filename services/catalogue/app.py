"""Wiring of the catalogue service: broker, router, catalogue state, HTTP API, metrics, health."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query

from services.catalogue.handlers import SERVICE, CatalogueMetrics, build_router
from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import load_catalogue
from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus, utc_now
from shared.http import service_app
from shared.kafka import BrokerPublisher, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS


def create_app(settings: CatalogueSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = CatalogueMetrics(registry)
    catalogue, report = load_catalogue(settings.open_catalogue_path, settings.census_path)
    for error in report.errors:
        logger.warning(
            "catalogue row rejected",
            extra={"source": error.source, "line": error.line, "reason": error.reason},
        )
    broker = make_broker(settings, registry, SERVICE)
    publisher = BrokerPublisher(broker)
    broker.include_router(build_router(settings, catalogue, publisher, metrics))

    async def publish_state() -> None:
        now = utc_now()
        await publisher.publish(
            CATALOGUE_DATASETS,
            [
                (
                    dataset.dataset_id,
                    DatasetCatalogued(
                        event_id=f"{dataset.dataset_id}@{now.isoformat()}",
                        occurred_at=now,
                        dataset_id=dataset.dataset_id,
                        dataset=dataset,
                    ),
                )
                for dataset in catalogue.datasets.values()
            ],
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to Kafka", broker.start, settings.startup_timeout_s, logger)
        await publish_state()
        logger.info(
            "catalogue published",
            extra={"datasets": len(catalogue.datasets), "rejected_rows": len(report.errors)},
        )
        yield
        await broker.stop()

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    app = service_app(SERVICE, lifespan, {"kafka": broker_ready}, registry)

    @app.get("/v1/datasets")
    async def list_datasets(
        status: DatasetStatus | None = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, object]:
        """Datasets of the catalogue, open or not, optionally filtered."""
        needle = (q or "").casefold()
        found = [
            d
            for d in catalogue.datasets.values()
            if (status is None or d.status == status)
            and (not needle or needle in d.title.casefold() or any(needle in tag.casefold() for tag in d.tags))
        ]
        return {
            "total": len(found),
            "offset": offset,
            "limit": limit,
            "items": [d.model_dump(mode="json") for d in found[offset : offset + limit]],
        }

    @app.get("/v1/datasets/{dataset_id}")
    async def get_dataset(dataset_id: str) -> DatasetRecord:
        dataset = catalogue.datasets.get(dataset_id)
        if dataset is None:
            raise HTTPException(404, f"No dataset {dataset_id!r} in the catalogue.")
        return dataset

    return app

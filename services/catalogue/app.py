"""Wiring of the catalogue service: sources, refresh, catalogue state on Kafka, enrichment, HTTP API."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header, HTTPException, Query

from services.catalogue.domain import Catalogue, LoadReport, changes, link_opened_census
from services.catalogue.handlers import SERVICE, CatalogueHolder, CatalogueMetrics, build_router
from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import DataGouvConnector, OpenDataSoftConnector, load_census_file, load_open_file
from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus, utc_now
from shared.http import problem_responses, require_admin, service_app
from shared.kafka import BrokerPublisher, StateView, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS


async def load_sources(settings: CatalogueSettings) -> LoadReport:
    """Every configured source, the first to name a dataset winning, opened census datasets linked
    to the dataset they were published as; bad rows are reported."""
    report = LoadReport()
    if settings.open_catalogue_path:
        report.extend(load_open_file(settings.open_catalogue_path))
    if settings.datagouv_organisations:
        async with httpx.AsyncClient(base_url=settings.datagouv_url, timeout=60) as client:
            report.extend(await DataGouvConnector(client, settings.datagouv_organisations).load())
    if settings.opendatasoft_url:
        async with httpx.AsyncClient(base_url=settings.opendatasoft_url, timeout=60) as client:
            report.extend(await OpenDataSoftConnector(client).load())
    if settings.census_path:
        report.extend(load_census_file(settings.census_path, settings.census_schema_path))
    report.datasets = link_opened_census(report.datasets)
    return report


def create_app(settings: CatalogueSettings) -> Any:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = CatalogueMetrics(registry)
    holder = CatalogueHolder(Catalogue([]))
    published = StateView(settings.kafka_bootstrap, CATALOGUE_DATASETS, DatasetCatalogued, logger)
    broker = make_broker(settings, registry, SERVICE)
    publisher = BrokerPublisher(broker)
    broker.include_router(build_router(settings, holder, publisher, metrics))
    refreshing = asyncio.Lock()

    async def refresh() -> dict[str, Any]:
        """Read the sources again and publish what changed: new, updated, opened and retired datasets."""
        async with refreshing:
            report = await load_sources(settings)
            for error in report.errors:
                logger.warning(
                    "catalogue row rejected", extra={"source": error.source, "line": error.line, "reason": error.reason}
                )
            metrics.rejected_rows.set(len(report.errors))
            before = {k: e.dataset for k, e in published.items.items() if not e.retired}
            catalogue = Catalogue(report.datasets)
            change = changes(before, catalogue.datasets)
            now = utc_now()
            events = [
                (d.dataset_id, DatasetCatalogued(event_id=f"{d.dataset_id}@{now.isoformat()}", occurred_at=now,
                                                 dataset_id=d.dataset_id, dataset=d))
                for d in change.published
            ] + [
                (dataset_id, DatasetCatalogued(event_id=f"{dataset_id}@{now.isoformat()}", occurred_at=now,
                                               dataset_id=dataset_id, retired=True, dataset=before[dataset_id]))
                for dataset_id in change.retired
            ]  # fmt: skip
            await publisher.publish(CATALOGUE_DATASETS, events)
            for key, event in events:
                assert isinstance(event, DatasetCatalogued)
                published.put(key, event)
            holder.current = catalogue
            summary = {
                "datasets": len(catalogue.datasets),
                "published": len(change.published),
                "retired": len(change.retired),
                "rejected_rows": [{"source": e.source, "line": e.line, "reason": e.reason} for e in report.errors],
            }
            logger.info("catalogue refreshed", extra={k: v for k, v in summary.items() if k != "rejected_rows"})
            return summary

    async def refresh_periodically() -> None:
        while True:
            await asyncio.sleep(settings.refresh_interval_s)
            try:
                await refresh()
            except Exception:
                logger.exception("catalogue refresh failed; the previous catalogue stays in force")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("read the published catalogue", published.start, settings.startup_timeout_s, logger)
        await published.ready.wait()
        await retry_until("connect to Kafka", broker.start, settings.startup_timeout_s, logger)
        await refresh()
        refresher = asyncio.create_task(refresh_periodically(), name="catalogue-refresh")
        yield
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await broker.stop()
        await published.stop()

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    app = service_app(SERVICE, lifespan, {"kafka": broker_ready}, registry)

    @app.get("/v1/datasets", tags=["catalogue"])
    async def list_datasets(
        q: Annotated[
            str | None, Query(max_length=200, description="Words to find in title, description, tags.")
        ] = None,
        status: DatasetStatus | None = None,
        organisation: Annotated[str | None, Query(max_length=200)] = None,
        theme: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Datasets of the catalogue, open or not, searched and filtered, by title."""
        found = holder.current.search(q, status, organisation, theme)
        return {
            "total": len(found),
            "offset": offset,
            "limit": limit,
            "items": [d.model_dump(mode="json") for d in found[offset : offset + limit]],
        }

    @app.get("/v1/datasets/{dataset_id}", responses=problem_responses(404), tags=["catalogue"])
    async def get_dataset(dataset_id: str) -> DatasetRecord:
        """One dataset of the catalogue."""
        dataset = holder.current.datasets.get(dataset_id)
        if dataset is None:
            raise HTTPException(404, f"No dataset {dataset_id!r} in the catalogue.")
        return dataset

    @app.post("/v1/catalogue/refresh", responses=problem_responses(401), tags=["administration"])
    async def refresh_now(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Read the sources again now and publish what changed (administrators)."""
        require_admin(authorization, settings.admin_token.get_secret_value())
        return await refresh()

    return app

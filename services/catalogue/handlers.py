"""The catalogue's use cases: the subscriber (decode each response, enrich it, forward it or dead-letter
it) and the refresh (read the sources again, publish what changed)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ValidationError

from services.catalogue.domain import Catalogue, LoadReport, changes
from services.catalogue.settings import CatalogueSettings
from shared.catalogue_view import CatalogueView
from shared.contracts import DatasetCatalogued, ResponseSubmitted, utc_now
from shared.kafka import EventPublisher, batch_subscriber, dead_letter, record_key
from shared.topics import CATALOGUE_DATASETS, DEAD_LETTERS, RESPONSES_ENRICHED, RESPONSES_SUBMITTED

SERVICE = "catalogue"


class CatalogueHolder:
    """The catalogue in force; a refresh replaces it whole, between two batches."""

    def __init__(self, current: Catalogue) -> None:
        self.current = current


class CatalogueMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.enriched = Counter(
            "catalogue_responses_enriched_total", "Responses enriched and forwarded.", registry=registry
        )
        self.datasets = Counter(
            "catalogue_dataset_references_total",
            "Dataset references in responses, by whether the catalogue knows them.",
            ["outcome"],
            registry=registry,
        )
        self.suggestions = Counter(
            "catalogue_suggestions_total",
            "Missing-dataset suggestions, matched to a dataset or grouped by title.",
            ["outcome"],
            registry=registry,
        )
        self.rejected_rows = Gauge(
            "catalogue_rejected_rows", "Source rows refused at the last refresh.", registry=registry
        )
        self.dead_letters = Counter(
            "catalogue_dead_letters_total", "Messages sent to the dead-letter topic.", registry=registry
        )


def enrich_batch(
    records: list[ConsumerRecord[bytes, bytes]], catalogue: Catalogue, metrics: CatalogueMetrics
) -> tuple[list[tuple[str | None, BaseModel]], list[tuple[str | None, BaseModel]]]:
    """Enriched responses to forward and dead letters, for one batch of records."""
    forward: list[tuple[str | None, BaseModel]] = []
    dead: list[tuple[str | None, BaseModel]] = []
    now = utc_now()
    for record in records:
        key = record_key(record)
        try:
            response = ResponseSubmitted.model_validate_json(record.value or b"")
        except ValidationError as error:
            dead.append((key, dead_letter(SERVICE, record, f"not a {ResponseSubmitted.__name__}: {error}")))
            continue
        enriched = catalogue.enrich(response, now)
        named = len(response.open_requests) + len(response.improvement_requests)
        metrics.datasets.labels("known").inc(len(enriched.datasets))
        metrics.datasets.labels("unknown").inc(named - len(enriched.datasets))
        for match in enriched.suggestions:
            metrics.suggestions.labels("matched" if match.matched_dataset_id else "grouped").inc()
        forward.append((key, enriched))
    return forward, dead


def build_router(
    settings: CatalogueSettings, holder: CatalogueHolder, publisher: EventPublisher, metrics: CatalogueMetrics
) -> KafkaRouter:
    router = KafkaRouter()

    @batch_subscriber(router, RESPONSES_SUBMITTED, settings.consumer_group, settings.batch_max_records)
    async def enrich_responses(records: Any) -> None:
        forward, dead = enrich_batch(records, holder.current, metrics)
        await publisher.publish(RESPONSES_ENRICHED, forward)
        await publisher.publish(DEAD_LETTERS, dead)
        metrics.enriched.inc(len(forward))
        metrics.dead_letters.inc(len(dead))

    return router


class Refresher:
    """Reads the sources again and publishes what changed: new, updated, opened and retired datasets.
    The published catalogue is `published`, this process's view of the catalogue topic."""

    def __init__(
        self,
        load: Callable[[], Awaitable[LoadReport]],
        holder: CatalogueHolder,
        published: CatalogueView,
        publisher: EventPublisher,
        metrics: CatalogueMetrics,
        logger: logging.Logger,
        interval_s: float,
    ) -> None:
        self._load = load
        self._holder = holder
        self._published = published
        self._publisher = publisher
        self._metrics = metrics
        self._logger = logger
        self._interval_s = interval_s
        self._refreshing = asyncio.Lock()

    async def refresh(self) -> dict[str, Any]:
        """Read the sources again and publish what changed: new, updated, opened and retired datasets."""
        async with self._refreshing:
            report = await self._load()
            for error in report.errors:
                self._logger.warning(
                    "catalogue row rejected", extra={"source": error.source, "line": error.line, "reason": error.reason}
                )
            self._metrics.rejected_rows.set(len(report.errors))
            before = self._published.datasets()
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
            await self._publisher.publish(CATALOGUE_DATASETS, events)
            for key, event in events:
                self._published.put(key, event)
            self._holder.current = catalogue
            summary = {
                "datasets": len(catalogue.datasets),
                "published": len(change.published),
                "retired": len(change.retired),
                "rejected_rows": [{"source": e.source, "line": e.line, "reason": e.reason} for e in report.errors],
            }
            self._logger.info("catalogue refreshed", extra={k: v for k, v in summary.items() if k != "rejected_rows"})
            return summary

    async def refresh_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh()
            except Exception:
                self._logger.exception("catalogue refresh failed; the previous catalogue stays in force")

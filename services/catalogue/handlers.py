"""The catalogue's subscriber: decode each response, enrich it, forward it (or dead-letter it)."""

from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ValidationError

from services.catalogue.domain import Catalogue
from services.catalogue.settings import CatalogueSettings
from shared.contracts import ResponseSubmitted, utc_now
from shared.kafka import EventPublisher, batch_subscriber, dead_letter, record_key
from shared.topics import DEAD_LETTERS, RESPONSES_ENRICHED, RESPONSES_SUBMITTED

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

"""The workspace's subscriber: what respondents wrote, kept as each respondent's latest submission."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError

from services.backoffice.repository import ContributionRepository
from services.backoffice.settings import BackofficeSettings
from shared.contracts import ResponseEnriched
from shared.kafka import EventPublisher, batch_subscriber, dead_letter, record_key, retry_in_place
from shared.topics import DEAD_LETTERS, RESPONSES_ENRICHED

SERVICE = "backoffice"


class BackofficeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "backoffice_responses_total",
            "Enriched responses consumed, by outcome (stored, superseded, dead_letter).",
            ["outcome"],
            registry=registry,
        )
        self.batch_retries = Counter(
            "backoffice_batch_retries_total",
            "Attempts to store a batch that failed and were retried.",
            registry=registry,
        )
        self.signins = Counter(
            "backoffice_signins_total",
            "Staff sign-ins, by outcome (ok, refused, throttled).",
            ["outcome"],
            registry=registry,
        )
        self.actions = Counter(
            "backoffice_actions_total",
            "Staff actions written to the audit log, by action.",
            ["action"],
            registry=registry,
        )

    def action(self, name: str) -> None:
        """Count a staff action written to the audit log."""
        self.actions.labels(name).inc()


def decode_batch(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[ResponseEnriched], list[tuple[str | None, BaseModel]]]:
    """Valid enriched responses, and dead letters for the rest."""
    accepted: list[ResponseEnriched] = []
    dead: list[tuple[str | None, BaseModel]] = []
    for record in records:
        try:
            accepted.append(ResponseEnriched.model_validate_json(record.value or b""))
        except ValidationError as error:
            dead.append(
                (record_key(record), dead_letter(SERVICE, record, f"not a {ResponseEnriched.__name__}: {error}"))
            )
    return accepted, dead


def build_router(
    settings: BackofficeSettings,
    contributions: ContributionRepository,
    publisher: EventPublisher,
    metrics: BackofficeMetrics,
    stopping: asyncio.Event,
) -> KafkaRouter:
    router = KafkaRouter()
    logger = logging.getLogger(SERVICE)
    zone = ZoneInfo(settings.timezone)

    @batch_subscriber(router, RESPONSES_ENRICHED, settings.consumer_group, settings.batch_max_records)
    async def keep_texts(records: Any) -> None:
        submissions, dead = decode_batch(records)
        moved = await retry_in_place(
            lambda: contributions.store(submissions, zone), stopping, logger, metrics.batch_retries.inc
        )
        await publisher.publish(DEAD_LETTERS, dead)
        metrics.responses.labels("stored").inc(moved)
        metrics.responses.labels("superseded").inc(len(submissions) - moved)
        metrics.responses.labels("dead_letter").inc(len(dead))

    return router

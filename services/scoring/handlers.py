"""Scoring's subscribers: decode a batch of enriched responses, fold it into the ballots, commit; decode a
batch of staff's exclusion decisions, move the respondents they set aside, commit."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, ValidationError

from services.scoring.domain import (
    BatchPlan,
    Cluster,
    ExclusionPlan,
    cluster_of,
    forgotten,
    plan_batch,
    plan_exclusions,
    respondents_touched,
)
from services.scoring.repository import BallotConflict, ScoringRepository
from services.scoring.settings import ScoringSettings
from shared.contracts import ConsultationDefined, ExclusionDecided, ResponseEnriched, utc_now
from shared.kafka import EventPublisher, batch_subscriber, dead_letter, record_key, retry_in_place
from shared.topics import DEAD_LETTERS, EXCLUSIONS, RESPONSES_ENRICHED

SERVICE = "scoring"
MAX_CONFLICT_RETRIES = 20


class ScoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "scoring_responses_total",
            "Enriched responses consumed, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.conflicts = Counter(
            "scoring_ballot_conflicts_total",
            "Batches re-planned because another writer changed a ballot.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "scoring_dead_letters_total", "Messages sent to the dead-letter topic.", registry=registry
        )
        self.batch_retries = Counter(
            "scoring_batch_retries_total",
            "Attempts to store a batch that failed and were retried in place (MongoDB unavailable, blocked…).",
            registry=registry,
        )
        self.exclusion_decisions = Counter(
            "scoring_exclusion_decisions_total",
            "Staff's decisions on flagged clusters consumed, by decision and outcome "
            "(applied; stale: redelivered or older than the one applied).",
            ["decision", "outcome"],
            registry=registry,
        )
        self.respondents_moved = Counter(
            "scoring_excluded_respondent_moves_total",
            "Respondents attributed to an excluded cluster (newly, or to another one) or put back (restored), "
            "by decisions applied.",
            ["direction"],
            registry=registry,
        )
        self.excluded_respondents = Gauge(
            "scoring_excluded_respondents",
            "Counted respondents set aside, in the consultation a decision last changed.",
            registry=registry,
        )
        self.batch_seconds = Histogram("scoring_batch_seconds", "Time to fold and commit one batch.", registry=registry)
        self.freshness = Histogram(
            "scoring_freshness_seconds",
            "From receipt by ingest to committed in the rankings.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )


def decode_batch(
    records: Sequence[ConsumerRecord[bytes, bytes]], window_of: Callable[[str], ConsultationDefined | None]
) -> tuple[list[ResponseEnriched], list[tuple[str | None, BaseModel]], int]:
    """Valid responses inside their window, dead letters, and the count of late ones dropped."""
    accepted: list[ResponseEnriched] = []
    dead: list[tuple[str | None, BaseModel]] = []
    late = 0
    for record in records:
        key = record_key(record)
        try:
            enriched = ResponseEnriched.model_validate_json(record.value or b"")
        except ValidationError as error:
            dead.append((key, dead_letter(SERVICE, record, f"not a {ResponseEnriched.__name__}: {error}")))
            continue
        consultation = window_of(enriched.response.consultation_id)
        if consultation is not None and not consultation.is_open_at(enriched.response.received_at):
            late += 1
            continue
        accepted.append(enriched)
    return accepted, dead, late


async def store_batch(
    repository: ScoringRepository, submissions: Sequence[ResponseEnriched], metrics: ScoringMetrics
) -> BatchPlan:
    """Plan against the stored ballots and exclusions and commit; re-plan when another writer got there first."""
    keys = {(s.response.consultation_id, s.response.respondent_key) for s in submissions}
    for attempt in range(MAX_CONFLICT_RETRIES):
        # The guards are read before the attribution: a decision applied after this read moves them, and the
        # write then aborts. Decisions never write ballots, whose writes are guarded by their own versions:
        # they are read at the same time as the guards, one round trip to the store fewer.
        guards, stored = await asyncio.gather(
            repository.exclusion_guards(key[0] for key in keys), repository.load_ballots(keys)
        )
        excluded = await repository.load_attribution(keys) if any(guards.values()) else {}
        plan = plan_batch(submissions, stored, excluded.keys())
        try:
            await repository.apply(plan, guards)
            return plan
        except BallotConflict:
            metrics.conflicts.inc()
            await asyncio.sleep(0.01 * (attempt + 1))
    raise RuntimeError(f"ballots still conflicting after {MAX_CONFLICT_RETRIES} attempts")


async def store_until_committed(
    repository: ScoringRepository,
    submissions: Sequence[ResponseEnriched],
    metrics: ScoringMetrics,
    logger: logging.Logger,
    stopping: asyncio.Event,
) -> BatchPlan:
    """Store the batch, retrying in place until it commits. Storing is idempotent, so a retry, or another
    replica taking the partitions over, counts nothing twice."""
    return await retry_in_place(
        lambda: store_batch(repository, submissions, metrics), stopping, logger, metrics.batch_retries.inc
    )


def decode_decisions(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[Cluster], list[tuple[str | None, BaseModel]]]:
    """Each decision with its offset (a tombstone forgets its cluster), and dead letters."""
    decisions: list[Cluster] = []
    dead: list[tuple[str | None, BaseModel]] = []
    for record in records:
        key = record_key(record)
        if record.value is None:
            consultation_id, _, cluster_id = (key or "").rpartition(":")
            if consultation_id and cluster_id:
                decisions.append(forgotten(consultation_id, cluster_id, record.offset))
            else:
                dead.append(
                    (key, dead_letter(SERVICE, record, "a tombstone whose key is not <consultation>:<cluster>"))
                )
            continue
        try:
            decided = ExclusionDecided.model_validate_json(record.value)
        except ValidationError as error:
            dead.append((key, dead_letter(SERVICE, record, f"not an {ExclusionDecided.__name__}: {error}")))
            continue
        decisions.append(cluster_of(decided, record.offset))
    return decisions, dead


async def store_decisions(
    repository: ScoringRepository, decisions: Sequence[Cluster], metrics: ScoringMetrics
) -> ExclusionPlan:
    """Plan the decisions against the stored clusters, attributions and ballots, and commit; re-plan when
    scoring (responses) or another replica changed the consultation meanwhile."""
    consultation_ids = {d.consultation_id for d in decisions}
    for attempt in range(MAX_CONFLICT_RETRIES):
        # Read the revisions first: any change committed after this read moves them, and the write aborts.
        revisions = {cid: (await repository.totals(cid)).revision for cid in sorted(consultation_ids)}
        clusters = await repository.load_clusters(consultation_ids)
        touched = respondents_touched(decisions, clusters)
        attributed = await repository.load_attribution(touched)
        ballots = await repository.load_ballots(touched)
        plan = plan_exclusions(decisions, clusters, attributed, ballots)
        try:
            await repository.apply_exclusions(plan, revisions)
            return plan
        except BallotConflict:
            metrics.conflicts.inc()
            await asyncio.sleep(0.01 * (attempt + 1))
    raise RuntimeError(f"exclusions still conflicting after {MAX_CONFLICT_RETRIES} attempts")


def _freshness(metrics: ScoringMetrics, received: Sequence[datetime]) -> None:
    now = utc_now()
    for instant in received:
        metrics.freshness.observe(max((now - instant).total_seconds(), 0.0))


def build_router(
    settings: ScoringSettings,
    repository: ScoringRepository,
    publisher: EventPublisher,
    window_of: Callable[[str], ConsultationDefined | None],
    metrics: ScoringMetrics,
    stopping: asyncio.Event,
    consultations_synced: Callable[[], Awaitable[None]] | None = None,
) -> KafkaRouter:
    router = KafkaRouter()
    logger = logging.getLogger(SERVICE)

    @batch_subscriber(router, RESPONSES_ENRICHED, settings.consumer_group, settings.batch_max_records)
    async def score_responses(records: Any) -> None:
        started = time.perf_counter()
        if consultations_synced is not None:
            # An early close is committed before any response received after it (see ingest's
            # `Definitions.close`): caught up now, the view knows every close that can drop one of these.
            await retry_in_place(consultations_synced, stopping, logger)
        submissions, dead, late = decode_batch(records, window_of)
        plan = await store_until_committed(repository, submissions, metrics, logger, stopping)
        await publisher.publish(DEAD_LETTERS, dead)
        counted = sum(len(new.seen) - (len(old.seen) if old else 0) for old, new in plan.ballots)
        metrics.responses.labels("counted").inc(counted)
        metrics.responses.labels("duplicate").inc(len(submissions) - counted)
        metrics.responses.labels("after_close").inc(late)
        metrics.dead_letters.inc(len(dead))
        metrics.batch_seconds.observe(time.perf_counter() - started)
        _freshness(metrics, [s.response.received_at for s in submissions])

    # Same consumer group as the responses: the publisher reads the group's progress on both topics.
    @batch_subscriber(router, EXCLUSIONS, settings.consumer_group, settings.batch_max_records)
    async def apply_decisions(records: Any) -> None:
        decisions, dead = decode_decisions(records)
        plan = await retry_in_place(
            lambda: store_decisions(repository, decisions, metrics), stopping, logger, metrics.batch_retries.inc
        )
        await publisher.publish(DEAD_LETTERS, dead)
        metrics.dead_letters.inc(len(dead))
        applied = {(c.key, c.position) for c in plan.clusters}
        for decision in decisions:
            outcome = "applied" if (decision.key, decision.position) in applied else "stale"
            metrics.exclusion_decisions.labels(decision.decision.value, outcome).inc()
        moved = plan.respondents.values()
        metrics.respondents_moved.labels("attributed").inc(sum(c is not None for c in moved))
        metrics.respondents_moved.labels("restored").inc(sum(c is None for c in moved))
        for cluster in plan.clusters:
            logger.info(
                "exclusion decision applied",
                extra={
                    "consultation_id": cluster.consultation_id,
                    "cluster_id": cluster.cluster_id,
                    "decision": cluster.decision.value,
                    "listed_respondents": len(cluster.respondent_keys),
                    "offset": cluster.position,
                },
            )
        for consultation_id in sorted(plan.consultations):
            totals = await repository.totals(consultation_id)
            metrics.excluded_respondents.set(totals.excluded_respondents)
            logger.info(
                "exclusions in force",
                extra={
                    "consultation_id": consultation_id,
                    "excluded_clusters": totals.excluded_clusters,
                    "excluded_respondents": totals.excluded_respondents,
                },
            )

    return router

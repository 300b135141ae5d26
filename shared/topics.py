"""Kafka topics: one constant each, named `<domain>.<event>.v<N>`, with the settings they are created with.

A breaking change to a message model is a new `.v<N+1>` topic; additive changes stay on the same one.
"""

from dataclasses import dataclass, field
from typing import Final

CONSULTATIONS = "consultation.defined.v1"
CATALOGUE_DATASETS = "catalogue.dataset.v1"
RESPONSES_SUBMITTED = "response.submitted.v1"
RESPONSES_ENRICHED = "response.enriched.v1"
RESULTS_PUBLISHED = "results.published.v1"
DEAD_LETTERS = "deadletter.v1"
COMMITMENTS = "commitment.recorded.v1"
EXCERPTS = "excerpt.approved.v1"
FOLLOW_UPS = "followup.requested.v1"
EXCLUSIONS = "exclusion.decided.v1"
TALLY_REQUESTS = "tally.requested.v1"
TALLIES = "rankings.tallied.v1"

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# A tally is sent gzipped (about 15 times smaller), but the producer checks a message's size before
# compressing it: 64 MB of JSON, some 75,000 ranking rows with every profile's breakdown.
MAX_TALLY_BYTES = 64 * 1024 * 1024
TALLY_COMPRESSION: Final = "gzip"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)

    def kafka_configs(self) -> dict[str, str]:
        base = {"cleanup.policy": "compact" if self.compacted else "delete"}
        return base | self.configs


DAY_MS = 24 * 3600 * 1000
# Answers are kept 13 months (396 days) by default, then deleted by Kafka; dead letters 30 days.
RESPONSE_RETENTION_DAYS = 396
DEAD_LETTER_RETENTION_DAYS = 30
# A tally request and its reply are useless once the close that asked has stopped waiting.
TALLY_RETENTION_DAYS = 1


def topic_specs(response_retention_days: int = RESPONSE_RETENTION_DAYS) -> tuple[TopicSpec, ...]:
    """Every topic with its settings; the topics carrying answers keep them `response_retention_days`."""
    answers = {"retention.ms": str(response_retention_days * DAY_MS)}
    return (
        TopicSpec(CONSULTATIONS, partitions=1, compacted=True),
        TopicSpec(CATALOGUE_DATASETS, partitions=1, compacted=True),
        TopicSpec(RESPONSES_SUBMITTED, partitions=6, configs=answers),
        TopicSpec(RESPONSES_ENRICHED, partitions=6, configs=answers),
        # One partition: results are rare, and the publisher scans this topic to emit them exactly once.
        # They are aggregates, published as open data: kept.
        TopicSpec(
            RESULTS_PUBLISHED,
            partitions=1,
            configs={"retention.ms": "-1", "max.message.bytes": str(MAX_MESSAGE_BYTES)},
        ),
        TopicSpec(DEAD_LETTERS, partitions=1, configs={"retention.ms": str(DEAD_LETTER_RETENTION_DAYS * DAY_MS)}),
        # Compacted state: each commitment's and excerpt's latest version, each follow-up request until ended.
        TopicSpec(COMMITMENTS, partitions=1, compacted=True),
        TopicSpec(EXCERPTS, partitions=1, compacted=True),
        TopicSpec(FOLLOW_UPS, partitions=1, compacted=True),
        # Staff's decision on each flagged cluster (the latest holds); scoring applies them.
        TopicSpec(EXCLUSIONS, partitions=1, compacted=True),
        # The close's cross-check: the publisher asks scoring for its tallies, scoring replies (aggregates only).
        TopicSpec(TALLY_REQUESTS, partitions=1, configs={"retention.ms": str(TALLY_RETENTION_DAYS * DAY_MS)}),
        TopicSpec(
            TALLIES,
            partitions=1,
            configs={"retention.ms": str(TALLY_RETENTION_DAYS * DAY_MS), "max.message.bytes": str(MAX_MESSAGE_BYTES)},
        ),
    )


TOPICS = topic_specs()

# Consumer groups whose progress the publisher reads to know that every response is scored.
CATALOGUE_GROUP = "catalogue"
SCORING_GROUP = "scoring"
PUBLISHER_GROUP = "publisher"

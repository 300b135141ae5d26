"""The close's cross-check over Kafka: the publisher asks scoring for its filtered tallies once scoring's
consumer group has committed up to the close's watermark; scoring replies with them, complete."""

from pydantic import AwareDatetime, Field

from shared.contracts.base import Contract, Event
from shared.contracts.rankings import RankingKind, RankingPage


class Position(Contract):
    """How far a consumer has read one partition: the offset of the next record."""

    topic: str = Field(description="The topic.")
    partition: int = Field(description="The partition.")
    offset: int = Field(description="The offset of the next record to read.")


class TallyRequested(Event):
    """The publisher, at a consultation's close, asks scoring for its filtered tallies; `event_id` is the
    request id the reply carries, `occurred_at` when it was asked."""

    consultation_id: str = Field(description="The closed consultation.")
    watermark: list[Position] = Field(
        description="What scoring's consumer group must have committed, on each partition, before it tallies."
    )
    expires_at: AwareDatetime = Field(description="When the publisher stops waiting: a later reply is useless.")


class RankingsTallied(Event):
    """Scoring's reply to a `TallyRequested`: each ranking whole, filtered (without the respondents set
    aside), without rank intervals, as its group had committed `committed`."""

    request_id: str = Field(description="The `event_id` of the request answered.")
    consultation_id: str = Field(description="The consultation.")
    committed: list[Position] = Field(description="What scoring's consumer group had committed when it tallied.")
    pages: dict[RankingKind, RankingPage] = Field(
        description="Every ranking (open, improve, suggestions), complete: offset 0, limit its total."
    )

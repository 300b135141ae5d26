from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """A value carried between services: immutable, tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Event(Contract):
    """A fact that happened, with its own identity and the instant it happened."""

    event_id: str = Field(description="Unique id of this event; redeliveries carry the same id.")
    occurred_at: AwareDatetime = Field(description="When the event happened (ISO 8601 with offset).")

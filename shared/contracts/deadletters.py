from pydantic import Field

from shared.contracts.base import Event


class MessageDeadLettered(Event):
    """A consumer could not process a message; it is parked here with the reason."""

    service: str = Field(description="Service that gave up on the message.")
    source_topic: str
    partition: int
    offset: int
    key: str | None = Field(default=None, description="Message key, decoded as UTF-8.")
    payload: str = Field(description="Message value, decoded as UTF-8 with replacement.")
    reason: str = Field(description="Why it could not be processed.")

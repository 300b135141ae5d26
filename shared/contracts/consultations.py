from typing import Self

from pydantic import AwareDatetime, Field, model_validator

from shared.contracts.base import Event


class ConsultationDefined(Event):
    """A consultation was created or its definition changed (compacted by `consultation_id`)."""

    consultation_id: str = Field(description="Stable identifier of the consultation.")
    title: str = Field(description="Title shown to respondents.")
    description: str | None = Field(default=None, description="What the consultation is about, shown to respondents.")
    opens_at: AwareDatetime = Field(description="First instant responses are accepted.")
    closes_at: AwareDatetime = Field(description="First instant responses are refused.")
    public_rankings: bool = Field(
        default=False,
        description="Live rankings open to everyone while the window is open; otherwise (and always after the "
        "close, until the results are public) they are for staff only.",
    )

    @model_validator(mode="after")
    def _window_ordered(self) -> Self:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self

    def is_open_at(self, instant: AwareDatetime) -> bool:
        """Whether a response received at `instant` falls inside the window [opens_at, closes_at)."""
        return self.opens_at <= instant < self.closes_at

"""What the ministry commits to after a consultation, the excerpts of free text staff approve for
publication, and the respondents who asked to be told: the contract of closing the loop."""

import re
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from shared.contracts.base import Contract, Event

# A quarter ("2027-T2") or a day ("2027-06-30").
TARGET = re.compile(r"^\d{4}-(T[1-4]|(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))$")
CommitmentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
PublicText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class CommitmentKind(StrEnum):
    """What the ministry commits to do."""

    OPEN = "open"
    IMPROVE = "improve"
    ADD = "add"


class CommitmentStatus(StrEnum):
    """Where a commitment stands: planned → in_progress → done, or dropped with a public reason."""

    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DROPPED = "dropped"


class StatusChange(Contract):
    """One step of a commitment's public history."""

    status: CommitmentStatus = Field(description="The status reached.")
    at: AwareDatetime = Field(description="When it was reached.")
    by: str = Field(description="`staff`, or `catalogue` when the catalogue showed the dataset opened.")
    note: str | None = Field(default=None, description="The public reason of a drop, or the link when done.")


class CommitmentRecorded(Event):
    """A commitment was made or changed: its whole current state with its history (compacted by
    `<consultation_id>:<commitment_id>`)."""

    consultation_id: str = Field(description="The consultation whose results the commitment answers.")
    commitment_id: CommitmentId = Field(description="Stable identifier within the consultation.")
    kind: CommitmentKind = Field(description="open a dataset, improve an open one, or add a suggested one.")
    dataset_id: str | None = Field(default=None, description="The catalogue dataset (kinds open and improve).")
    suggestion_key: str | None = Field(default=None, description="The suggestion group (kind add).")
    title: str = Field(description="Title of the dataset or suggestion group when the commitment was made.")
    service: str = Field(description="The service in charge (from the census where it says).")
    target: str = Field(description="Target: a quarter `2027-T2` or a day `2027-06-30`.")
    status: CommitmentStatus = Field(description="Where the commitment stands now.")
    note_fr: str = Field(description="Public note, in French.")
    note_en: str | None = Field(default=None, description="Public note, in English (optional).")
    reason: str | None = Field(default=None, description="Public reason, when dropped.")
    done_url: str | None = Field(default=None, description="Where the opened or improved dataset is, when done.")
    history: list[StatusChange] = Field(description="Every status reached, oldest first.")
    updated_at: AwareDatetime = Field(description="When the commitment last changed.")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if (self.dataset_id is None) == (self.suggestion_key is None):
            raise ValueError("name either a dataset_id or a suggestion_key")
        if (self.kind is CommitmentKind.ADD) != (self.suggestion_key is not None):
            raise ValueError("a commitment to add names a suggestion_key; to open or improve, a dataset_id")
        if not TARGET.match(self.target):
            raise ValueError("target is a quarter (2027-T2) or a day (2027-06-30)")
        if self.status is CommitmentStatus.DROPPED and not self.reason:
            raise ValueError("a dropped commitment gives its public reason")
        if not self.history or self.history[-1].status is not self.status:
            raise ValueError("the history ends with the current status")
        return self

    @property
    def key(self) -> str:
        return f"{self.consultation_id}:{self.commitment_id}"


class ExcerptKind(StrEnum):
    IMPROVEMENT = "improvement"
    SUGGESTION = "suggestion"


class ExcerptApproved(Event):
    """Staff approved an excerpt of what respondents wrote for publication, as edited to remove anything
    personal, or withdrew the approval (`approved` false); compacted by `<consultation_id>:<excerpt_id>`."""

    consultation_id: str = Field(description="The consultation.")
    excerpt_id: str = Field(description="Stable identifier of the excerpt within the consultation.")
    kind: ExcerptKind = Field(description="An improvement comment or a suggestion's description.")
    dataset_id: str | None = Field(default=None, description="The dataset the comment is about.")
    group_key: str | None = Field(default=None, description="The suggestion group the description is in.")
    title: str = Field(description="Title of the dataset or suggestion group.")
    text: PublicText = Field(description="The text as staff approved it for publication.")
    approved: bool = Field(description="False once the approval is withdrawn: nothing of it is published.")

    @property
    def key(self) -> str:
        return f"{self.consultation_id}:{self.excerpt_id}"


class FollowUpRequested(Event):
    """A respondent asked to be told when the ministry commits to, and completes, work on the datasets
    they asked for (compacted by `subscription_id`; a tombstone ends it). The address travels and rests
    encrypted; only the service that sends the e-mails holds the key."""

    subscription_id: str = Field(description="Random identifier of the request; the unsubscribe link names it.")
    consultation_id: str = Field(description="The consultation answered.")
    email_encrypted: str = Field(description="The e-mail address, encrypted (Fernet, `COD_FOLLOWUP_KEY`).")
    dataset_ids: list[str] = Field(description="Datasets the respondent asked to open or improve.")
    suggestion_titles: list[str] = Field(
        default_factory=list, description="Titles of the datasets they suggested, as typed (matched to groups later)."
    )

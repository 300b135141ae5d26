from pydantic import AwareDatetime, Field

from shared.contracts.base import Contract, Event
from shared.contracts.catalogue import DatasetSummary
from shared.contracts.questionnaire import (
    ImprovementRequest,
    OpenRequest,
    PlatformFeedback,
    Profile,
    Suggestion,
)


class ResponseSubmitted(Event):
    """A response was accepted by ingest (`event_id` equals `response_id`)."""

    consultation_id: str = Field(description="Consultation the response answers.")
    response_id: str = Field(description="Identity of the submission; a retried POST keeps it.")
    respondent_key: str = Field(
        description="Pseudonymous respondent identity (keyed hash of the token); the latest "
        "submission of a respondent replaces the earlier ones."
    )
    profile: Profile = Field(description="The respondent's profile.")
    organisation: str | None = Field(default=None, description="Optional organisation.")
    departement: str | None = Field(default=None, description="INSEE département code, when given.")
    region: str | None = Field(default=None, description="INSEE région code, given or implied by the département.")
    email_hash: str | None = Field(
        default=None, description="Keyed hash of the normalised e-mail, when given; never the e-mail itself."
    )
    privacy_notice: str | None = Field(default=None, description="Version of the privacy notice consented to.")
    received_at: AwareDatetime = Field(description="Receipt time stamped by ingest; orders amendments.")
    open_requests: list[OpenRequest] = Field(default_factory=list, description="Datasets to open.")
    improvement_requests: list[ImprovementRequest] = Field(
        default_factory=list, description="Open datasets to improve."
    )
    suggestions: list[Suggestion] = Field(default_factory=list, description="Missing datasets.")
    platform: PlatformFeedback | None = Field(default=None, description="Feedback on the platform.")
    client_fingerprint: str | None = Field(
        default=None,
        description="Keyed hash of the client's network (IPv4 /24, IPv6 /48) and browser family: equal for "
        "clients of one network and browser, never the address; what stuffing detection groups by.",
    )
    fill_seconds: float | None = Field(
        default=None, description="Seconds between the form being served and sent, when the web form tells it."
    )
    withdrawn: bool = Field(
        default=False,
        description="The respondent withdrew their answer with their link: as their latest submission, it "
        "removes them from every ranking (it carries no request).",
    )


class SuggestionMatch(Contract):
    """How the catalogue understood one free-text suggestion."""

    group_key: str = Field(
        description="Grouping key: `dataset:<id>` when matched, else the normalised title `title:<words>`."
    )
    matched_dataset_id: str | None = Field(default=None, description="Catalogue dataset matched.")
    title: str = Field(description="Title to show for the group.")
    match_score: float | None = Field(default=None, description="Similarity of the match, 0 to 100.")
    matched_on: str | None = Field(default=None, description="What matched: title, acronym or slug.")


class ResponseEnriched(Event):
    """A response with the catalogue's metadata for each dataset it names."""

    response: ResponseSubmitted = Field(description="The response as accepted.")
    datasets: dict[str, DatasetSummary] = Field(
        default_factory=dict, description="Metadata per dataset id named; absent when unknown."
    )
    suggestions: list[SuggestionMatch] = Field(
        default_factory=list, description="One entry per suggestion, in the response's order."
    )

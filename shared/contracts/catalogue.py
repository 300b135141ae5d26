from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import Field

from shared.contracts.base import Contract, Event


class DatasetStatus(StrEnum):
    OPEN = "open"
    NOT_OPEN = "not_open"


class DatasetSummary(Contract):
    """What a response is enriched with for each dataset it names."""

    dataset_id: str = Field(description="Catalogue identifier.")
    title: str = Field(description="Title of the dataset.")
    organisation: str | None = Field(default=None, description="Producer of the dataset.")
    theme: str | None = Field(default=None, description="Cultural domain, when known.")
    tags: list[str] = Field(default_factory=list, description="Keywords.")
    status: DatasetStatus = Field(description="open, or not_open (in the census only).")
    formats: list[str] = Field(default_factory=list, description="Formats of its resources.")
    frequency: str | None = Field(default=None, description="Declared update frequency.")
    spatial_granularity: str | None = Field(default=None, description="Geographic granularity.")


class OpenedAs(Contract):
    """Where and when a dataset of the census was opened."""

    opened_on: date = Field(description="Date of first publication, as the census gives it (`date_pub`).")
    dataset_id: str | None = Field(
        default=None, description="Id of the published dataset in the open catalogue, when it could be told."
    )
    url: str | None = Field(default=None, description="Page of the published dataset, when known.")
    matched_on: Literal["url", "title"] | None = Field(
        default=None,
        description="How it was linked: `url` when the census names it, `title` when found by matching the "
        "census title against the open catalogue, null when it could not be linked.",
    )
    match_score: float | None = Field(
        default=None, description="rapidfuzz score (0-100) of a title match; null otherwise."
    )


class DatasetRecord(DatasetSummary):
    """A dataset as the catalogue publishes it."""

    description: str | None = Field(default=None, description="Description, cut to 1,000 characters.")
    slug: str | None = Field(default=None, description="URL slug on the source portal.")
    acronym: str | None = Field(default=None, description="Acronym, when the dataset has one.")
    url: str | None = Field(default=None, description="Page of the dataset on its portal.")
    source: str = Field(description="Where the catalogue read it (file or connector).")
    service: str | None = Field(
        default=None, description="Entity producing it within its organisation (census `service`)."
    )
    sous_direction: str | None = Field(
        default=None, description="Sub-directorate producing it within the ministry (census `sous_direction`)."
    )
    producer_type: str | None = Field(
        default=None,
        description="Kind of producer within the ministry, as the census schema enumerates it (`producteur_type`), "
        "e.g. `1. Administration centrale`.",
    )
    service_contact: str | None = Field(
        default=None,
        description="E-mail address of the producing service (census `contact_service`); never a person's.",
    )
    personal_data: bool | None = Field(
        default=None, description="Whether it holds personal data (census `donnees_perso`); null if unsaid."
    )
    confidential: bool | None = Field(
        default=None, description="Whether it holds legal secrets (census `donnees_secret`); null if unsaid."
    )
    intellectual_property: bool | None = Field(
        default=None,
        description="Whether the ministry holds intellectual property rights on it (census `donnees_pi`); "
        "null if unsaid.",
    )
    release_constraints: str | None = Field(
        default=None,
        description="Whether it can be opened and, if not, why (census `donnees_diffusion`), cut to 1,000 characters.",
    )
    opened_as: OpenedAs | None = Field(
        default=None,
        description="For a census dataset that has been opened: when, and the published dataset it was linked to.",
    )


class DatasetCatalogued(Event):
    """The catalogue's current knowledge of one dataset (compacted by `dataset_id`)."""

    dataset_id: str = Field(description="Catalogue identifier, also the message key.")
    retired: bool = Field(default=False, description="True once the dataset left the catalogue.")
    dataset: DatasetRecord = Field(description="The dataset's metadata.")

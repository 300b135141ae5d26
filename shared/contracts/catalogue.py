from enum import StrEnum

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


class DatasetRecord(DatasetSummary):
    """A dataset as the catalogue publishes it."""

    description: str | None = Field(default=None, description="Description, cut to 1,000 characters.")
    slug: str | None = Field(default=None, description="URL slug on the source portal.")
    acronym: str | None = Field(default=None, description="Acronym, when the dataset has one.")
    url: str | None = Field(default=None, description="Page of the dataset on its portal.")
    source: str = Field(description="Where the catalogue read it (file or connector).")


class DatasetCatalogued(Event):
    """The catalogue's current knowledge of one dataset (compacted by `dataset_id`)."""

    dataset_id: str = Field(description="Catalogue identifier, also the message key.")
    retired: bool = Field(default=False, description="True once the dataset left the catalogue.")
    dataset: DatasetRecord = Field(description="The dataset's metadata.")

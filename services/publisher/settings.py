from pydantic import Field

from shared.settings import ServiceSettings


class PublisherSettings(ServiceSettings):
    http_port: int = 8003
    mongo_database: str = "cod_publisher"
    tally_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a close waits for scoring's reply to its tally request before it tries again "
        "(with its back-off).",
    )
    poll_interval_s: float = Field(default=1.0, gt=0, description="How often closes are checked.")
    lag_interval_s: float = Field(default=15.0, gt=0, description="How often consumer lag is measured.")
    publication_delay_days: int | None = Field(
        default=None,
        ge=0,
        description="Days from the close to public results; unset: one calendar month (the ministry's "
        "commitment). Administrators see the results at once, and may release them earlier.",
    )
    min_cell: int = Field(
        default=5,
        ge=1,
        description="Smallest count published in a breakdown, a profile or a suggestion group's title: "
        "smaller cells are suppressed, rarer profiles pooled as 'other', smaller groups' words withheld.",
    )
    code_version: str = Field(
        default="development", description="Version of the code, published with the method (a git commit)."
    )
    bootstrap_resamples: int = Field(
        default=1000,
        ge=1,
        description="Bootstrap resamples of the published rank intervals (COD_BOOTSTRAP_RESAMPLES).",
    )

"""The settings every service shares; each service extends `ServiceSettings` with its own."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Read once at the entry point from `COD_*` environment variables, then passed down."""

    model_config = SettingsConfigDict(env_prefix="COD_", extra="ignore", frozen=True)

    environment: Environment = "development"
    instance: str = Field(default="", description="Replica name, for logs and client ids.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"

    kafka_bootstrap: str = "localhost:9092"
    kafka_create_topics: bool = Field(
        default=True, description="Create missing topics with their settings at start-up."
    )
    kafka_produce_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest a produce may take before it is reported failed. Ingest answers 503 "
        "past it; the publisher waits this long after a close before it takes its watermark.",
    )
    mongo_uri: str = "mongodb://localhost:27017/?directConnection=true"
    startup_timeout_s: float = Field(
        default=120.0, gt=0, description="How long to keep retrying Kafka and MongoDB at start."
    )

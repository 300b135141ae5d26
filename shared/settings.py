"""The settings every service shares; each service extends `ServiceSettings` with its own."""

from typing import Literal, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import RESPONSE_RETENTION_DAYS

Environment = Literal["development", "test", "production"]
DEV_ADMIN_TOKEN = "dev-admin-token-change-me"  # noqa: S105
# How much longer the publisher waits after a close than ingest may take to answer a response.
SETTLE_MARGIN_S = 1.0
MIN_ADMIN_TOKEN_LENGTH = 32


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
    response_retention_days: int = Field(
        default=RESPONSE_RETENTION_DAYS,
        ge=1,
        description="How long Kafka keeps the topics carrying answers (set when a topic is created).",
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
    admin_token: SecretStr = Field(
        default=SecretStr(DEV_ADMIN_TOKEN),
        description="Bearer token of the administrators (consultations, catalogue refresh, early close).",
    )
    admin_failures_per_minute: int = Field(
        default=10, ge=1, description="Failed administrator authentications a client may make a minute (429 beyond)."
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Proxies in front of the service (CIDRs, e.g. COD_TRUSTED_PROXIES='[\"10.0.0.0/8\"]'): the client "
        "is the right-most address of X-Forwarded-For that is not one of them.",
    )
    frame_ancestors: str = Field(
        default="'none'",
        description="Who may embed the pages (CSP frame-ancestors), e.g. 'self' https://www.culture.gouv.fr.",
    )

    @property
    def accept_deadline_s(self) -> float:
        """Ingest answers a response within this long of its receipt, or answers 503 with its transaction
        aborted (unless the commit was already requested: then the 503 says it may be recorded)."""
        return self.kafka_produce_timeout_s

    @property
    def settle_s(self) -> float:
        """How long after a close the publisher reads its watermark. Longer than `accept_deadline_s`, both
        derived from one setting: every response answered 202 for a receipt before the close is in Kafka
        before the watermark is read."""
        return self.accept_deadline_s + SETTLE_MARGIN_S

    @model_validator(mode="after")
    def _no_weak_admin_token_in_production(self) -> Self:
        if self.environment == "production":
            token = self.admin_token.get_secret_value()
            if token == DEV_ADMIN_TOKEN:
                raise ValueError("set COD_ADMIN_TOKEN: the development default is refused in production")
            if len(token) < MIN_ADMIN_TOKEN_LENGTH:
                raise ValueError(
                    f"COD_ADMIN_TOKEN must have at least {MIN_ADMIN_TOKEN_LENGTH} characters in production"
                )
        return self

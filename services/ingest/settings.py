from typing import Self

from pydantic import Field, SecretStr, model_validator

from shared.followup import FollowUpKeySettings
from shared.mail import MailSettings
from shared.settings import ServiceSettings

DEV_PSEUDONYM_SECRET = "dev-pseudonym-secret-change-me"  # noqa: S105


class IngestSettings(ServiceSettings, FollowUpKeySettings, MailSettings):
    http_port: int = 8000
    mongo_database: str = "cod_ingest"
    pending_hours: float = Field(
        default=48.0, gt=0, description="How long an answer waits for its address to confirm it (then dropped)."
    )
    privacy_controller: str = Field(
        default="Ministère de la Culture", description="Who processes the responses, on the privacy notice."
    )
    privacy_contact: str = Field(
        default="", description="Where respondents exercise their rights (the data protection officer's address)."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL respondents reach ingest at (amend links)."
    )
    pseudonym_secret: SecretStr = Field(
        default=SecretStr(DEV_PSEUDONYM_SECRET),
        description="Key of the hashes that turn respondent tokens and e-mails into pseudonymous keys.",
    )
    max_body_bytes: int = Field(default=64 * 1024, gt=0, description="Largest request body accepted (413 beyond).")
    rate_limit_per_minute: float = Field(
        default=30.0, ge=0, description="Submissions per minute per client, after the burst (429 beyond)."
    )
    rate_limit_burst: int = Field(default=20, ge=1, description="Submissions a client may send at once.")
    commit_lanes: int = Field(
        default=2, ge=1, le=16, description="Kafka producers committing transactions in turn (see outbox.py)."
    )
    ingest_slot: int | None = Field(
        default=None,
        ge=0,
        description="This replica's slot (0, 1, …; the StatefulSet's pod index): its Kafka transactional ids are "
        "cod-ingest-<slot>-<lane>, so a replacement in the same slot fences a dead replica's open transactions at "
        "once. Two live replicas must never share a slot. Required in production.",
    )
    improve_slots: int = Field(default=5, ge=1, le=50, description="Datasets-to-improve rows in the web form.")
    suggestion_slots: int = Field(default=3, ge=1, le=20, description="Missing-dataset rows in the web form.")

    def amend_url(self, consultation_id: str, token: str) -> str:
        """Where a respondent comes back with their token to amend their response."""
        return f"{self.public_url}/consultations/{consultation_id}?token={token}"

    def confirm_url(self, consultation_id: str, pending_id: str, signature: str) -> str:
        """The link that confirms a held answer, mailed to the address that answered again."""
        return f"{self.public_url}/consultations/{consultation_id}/confirmation/{pending_id}?jeton={signature}"

    def transactional_id(self, host: str) -> str:
        """The prefix of this replica's transactional ids: stable per slot, so a replacement fences its
        predecessor; without a slot (development), per host and port, as two local replicas need."""
        if self.ingest_slot is not None:
            return f"cod-ingest-{self.ingest_slot}"
        return f"cod-ingest-{self.instance or f'{host}-{self.http_port}'}"

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Self:
        if self.environment == "production" and self.pseudonym_secret.get_secret_value() == DEV_PSEUDONYM_SECRET:
            raise ValueError("set COD_PSEUDONYM_SECRET: the development default is refused in production")
        if self.environment == "production" and self.ingest_slot is None:
            raise ValueError("set COD_INGEST_SLOT: a replacement replica must fence the one it replaces")
        return self

from typing import Self

from pydantic import Field, SecretStr, model_validator

from shared.followup import FollowUpKeySettings
from shared.mail import MailSettings
from shared.settings import ServiceSettings

DEV_STAFF_BOOTSTRAP = "admin:dev-staff-change-me"


class BackofficeSettings(ServiceSettings, FollowUpKeySettings, MailSettings):
    http_port: int = 8004
    mongo_database: str = "cod_backoffice"
    consumer_group: str = "backoffice"
    batch_max_records: int = Field(default=500, gt=0)
    ingest_url: str = Field(default="http://127.0.0.1:8000", description="Ingest's API, as this service reaches it.")
    scoring_url: str = Field(default="http://127.0.0.1:8002", description="Scoring's API, as this service reaches it.")
    publisher_url: str = Field(
        default="http://127.0.0.1:8003", description="The publisher's API, as this service reaches it."
    )
    form_public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL respondents reach the questionnaire at (links)."
    )
    results_public_url: str = Field(
        default="http://127.0.0.1:8003", description="Base URL the public reaches the published results at (links)."
    )
    staff_bootstrap: SecretStr | None = Field(
        default=SecretStr(DEV_STAFF_BOOTSTRAP),
        description="`name:password` of a staff account created at start-up when no account of that name exists; "
        "empty to create none. The development default is refused in production.",
    )
    session_hours: float = Field(default=8.0, gt=0, description="How long a staff session lasts after sign-in.")
    cookie_secure: bool | None = Field(
        default=None, description="Send cookies over HTTPS only; by default, everywhere but development and test."
    )
    signin_window_minutes: float = Field(default=15.0, gt=0, description="Window over which failed sign-ins count.")
    signin_failures_per_account: int = Field(
        default=5, ge=1, description="Failed sign-ins on one account within the window before it is throttled."
    )
    signin_failures_per_client: int = Field(
        default=20, ge=1, description="Failed sign-ins from one client address within the window before throttling."
    )
    timezone: str = Field(default="Europe/Paris", description="Time zone of the dates staff read and type.")
    live_poll_s: float = Field(default=0.4, gt=0, description="How often a live page checks the rankings for changes.")
    page_size: int = Field(default=20, ge=1, le=200, description="Texts per page in 'what respondents wrote'.")
    upstream_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of calls to the other services.")
    followup_retention_days: int = Field(
        default=365, ge=0, description="Days after a consultation's close past which follow-up addresses are deleted."
    )
    followup_sweep_interval_s: float = Field(
        default=3600.0, gt=0, description="How often addresses past their retention are looked for."
    )

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.environment == "production"

    @model_validator(mode="after")
    def _no_default_staff_password_in_production(self) -> Self:
        bootstrap = self.staff_bootstrap.get_secret_value() if self.staff_bootstrap else ""
        if self.environment == "production" and bootstrap == DEV_STAFF_BOOTSTRAP:
            raise ValueError(
                "set COD_STAFF_BOOTSTRAP (or leave it empty): the development default is refused in production"
            )
        if bootstrap and ":" not in bootstrap:
            raise ValueError("COD_STAFF_BOOTSTRAP must read name:password")
        return self

from typing import Self

from pydantic import Field, SecretStr, model_validator

from shared.contracts import DetectionSettings
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
    # Stuffing detection (services/backoffice/detection.py); `python -m benchmarks.stuffing_detection`
    # shows what each does on a synthetic consultation.
    detect_burst_window_s: int = Field(default=600, gt=0, description="Window of a network burst, seconds.")
    detect_burst_min: int = Field(
        default=25, ge=2, description="New respondents from one network within the window that make a burst."
    )
    detect_same_window_s: int = Field(default=600, gt=0, description="Window of a same-answers cluster, seconds.")
    detect_same_min: int = Field(
        default=20, ge=2, description="Respondents with nearly the same answers within the window that make one."
    )
    detect_same_similarity: float = Field(
        default=0.6, gt=0, le=1, description="Least Jaccard similarity of two answer sets called nearly the same."
    )
    detect_same_lift: float = Field(
        default=3.0,
        ge=1,
        description="How many times more common an answer set must be in its window than in the rest of the "
        "consultation to make a cluster.",
    )
    detect_fast_fill_s: float = Field(
        default=10.0, ge=0, description="Fill time, seconds, under which a web form was not filled by a person."
    )
    detect_fast_min: int = Field(default=5, ge=2, description="Too-fast forms from one network that make a cluster.")

    @property
    def detection(self) -> DetectionSettings:
        return DetectionSettings(
            burst_window_s=self.detect_burst_window_s,
            burst_min=self.detect_burst_min,
            same_window_s=self.detect_same_window_s,
            same_min=self.detect_same_min,
            same_similarity=self.detect_same_similarity,
            same_lift=self.detect_same_lift,
            fast_fill_s=self.detect_fast_fill_s,
            fast_min=self.detect_fast_min,
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

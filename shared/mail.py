"""E-mail, for the services that send it: the SMTP settings and one plain-text sender (aiosmtplib)."""

from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from pydantic import BaseModel, Field, SecretStr


class EmailRefused(Exception):
    """The server refused the e-mail for good (a 5xx answer): trying again would not help."""


class MailSettings(BaseModel):
    """The `smtp_*` settings (`COD_SMTP_HOST`, …) of a service that sends e-mail."""

    smtp_host: str = Field(default="127.0.0.1", description="SMTP server the e-mails go through.")
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_username: str | None = Field(default=None, description="SMTP account, when the server wants one.")
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_from: str = Field(
        default="Consultation Open Data <ne-pas-repondre@culture.gouv.fr>", description="Sender of the e-mails."
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0)


class SmtpMailer:
    """Sends plain-text e-mails, French then English, through the configured SMTP server."""

    def __init__(self, settings: MailSettings) -> None:
        self._settings = settings

    async def send(self, to: str, subject: str, body: str, headers: Mapping[str, str] | None = None) -> None:
        """Send one e-mail; `EmailRefused` for a permanent refusal, other errors may be retried."""
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid()
        message["Content-Language"] = "fr, en"
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(body)
        # An empty account (as Compose passes an unset one) means none.
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username or None,
                password=password or None,
                start_tls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            # The refusals name the recipient: only their codes may reach a log.
            raise EmailRefused(",".join(str(r.code) for r in error.recipients)) from None
        except aiosmtplib.SMTPResponseException as error:
            if error.code >= 500:
                raise EmailRefused(str(error.code)) from None
            raise

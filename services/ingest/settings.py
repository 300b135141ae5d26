from typing import Self

from pydantic import Field, SecretStr, model_validator

from shared.settings import ServiceSettings

DEV_ADMIN_TOKEN = "dev-admin-token-change-me"  # noqa: S105
DEV_PSEUDONYM_SECRET = "dev-pseudonym-secret-change-me"  # noqa: S105


class IngestSettings(ServiceSettings):
    http_port: int = 8000
    admin_token: SecretStr = Field(
        default=SecretStr(DEV_ADMIN_TOKEN), description="Bearer token of the consultation administrators."
    )
    pseudonym_secret: SecretStr = Field(
        default=SecretStr(DEV_PSEUDONYM_SECRET),
        description="Key of the hash that turns respondent tokens into pseudonymous keys.",
    )

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> Self:
        if self.environment == "production":
            if self.admin_token.get_secret_value() == DEV_ADMIN_TOKEN:
                raise ValueError("set COD_ADMIN_TOKEN: the development default is refused in production")
            if self.pseudonym_secret.get_secret_value() == DEV_PSEUDONYM_SECRET:
                raise ValueError("set COD_PSEUDONYM_SECRET: the development default is refused in production")
        return self

"""The follow-up key that ingest and the workspace share: the Fernet cipher of the respondents'
addresses and the token of the unsubscribe links, which ingest checks without a lookup."""

import base64
import hashlib
import hmac
from typing import Self
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

__all__ = [
    "DEV_FOLLOWUP_KEY",
    "UNSUBSCRIBE_PATH",
    "FollowUpKey",
    "FollowUpKeySettings",
    "InvalidToken",
    "unsubscribe_url",
]

# A valid Fernet key (32 bytes, URL-safe base64) that everyone can read: development and tests only.
DEV_FOLLOWUP_KEY = base64.urlsafe_b64encode(b"dev-followup-key-change-me-00000").decode()
UNSUBSCRIBE_PATH = "/suivi/desabonnement"


class FollowUpKey:
    """Encrypts and decrypts addresses, and signs and checks unsubscribe tokens, with one key."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())
        # A key of its own for the links, derived so that a token reveals nothing of the Fernet key.
        self._link_key = hmac.new(base64.urlsafe_b64decode(key), b"cod-followup-unsubscribe", hashlib.sha256).digest()

    def encrypt(self, email: str) -> str:
        return self._fernet.encrypt(email.encode()).decode()

    def decrypt(self, encrypted: str) -> str:
        """The address; raises `InvalidToken` if another key encrypted it or it was altered."""
        return self._fernet.decrypt(encrypted.encode()).decode()

    def unsubscribe_token(self, subscription_id: str) -> str:
        digest = hmac.new(self._link_key, subscription_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def token_is_valid(self, subscription_id: str, token: str) -> bool:
        return hmac.compare_digest(self.unsubscribe_token(subscription_id), token)


def unsubscribe_url(form_public_url: str, key: FollowUpKey, subscription_id: str) -> str:
    """The link every follow-up e-mail carries, to ingest's unsubscribe page."""
    token = key.unsubscribe_token(subscription_id)
    return f"{form_public_url.rstrip('/')}{UNSUBSCRIBE_PATH}/{quote(subscription_id)}?jeton={token}"


class FollowUpKeySettings(BaseModel):
    """The `followup_key` field and its checks, for the settings of the services that hold the key."""

    followup_key: SecretStr = Field(
        default=SecretStr(DEV_FOLLOWUP_KEY),
        description="Fernet key of the follow-up addresses and unsubscribe links (ingest and backoffice share it).",
    )

    @field_validator("followup_key")
    @classmethod
    def _a_fernet_key(cls, value: SecretStr) -> SecretStr:
        try:
            Fernet(value.get_secret_value().encode())
        except ValueError:
            raise ValueError("COD_FOLLOWUP_KEY is a Fernet key: 32 bytes in URL-safe base64") from None
        return value

    @model_validator(mode="after")
    def _no_default_followup_key_in_production(self) -> Self:
        in_production = getattr(self, "environment", None) == "production"
        if in_production and self.followup_key.get_secret_value() == DEV_FOLLOWUP_KEY:
            raise ValueError("set COD_FOLLOWUP_KEY: the development default is refused in production")
        return self

    def followup(self) -> FollowUpKey:
        return FollowUpKey(self.followup_key.get_secret_value())

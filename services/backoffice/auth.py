"""Staff sign-in: argon2id password hashes, sessions held in MongoDB, CSRF tokens, and throttling of
failed sign-ins per account and per client, shared by every replica."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.backoffice.domain import throttled_until
from services.backoffice.repository import StaffRepository, StaffSession
from services.backoffice.settings import BackofficeSettings

SESSION_COOKIE = "cod_staff_session"
SIGNIN_CSRF_COOKIE = "cod_signin_csrf"
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the account does not exist, so that an unknown name costs as much as a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a staff password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: StaffSession


@dataclass(frozen=True)
class Throttled:
    until: datetime


class Refused:
    """Wrong name or password, or a disabled account (they are not told apart)."""


class StaffAuth:
    def __init__(self, repository: StaffRepository, settings: BackofficeSettings) -> None:
        self._repository = repository
        self._settings = settings
        self._window = timedelta(minutes=settings.signin_window_minutes)

    async def bootstrap(self, at: datetime) -> bool:
        """Create the configured start-up account if no account of that name exists yet."""
        if self._settings.staff_bootstrap is None or not self._settings.staff_bootstrap.get_secret_value():
            return False
        name, _, password = self._settings.staff_bootstrap.get_secret_value().partition(":")
        if await self._repository.account(name) is not None:
            return False
        return await self._repository.add_account(name, hash_password(password), at)

    async def sign_in(self, name: str, password: str, client: str, now: datetime) -> SignedIn | Throttled | Refused:
        keys = [f"account:{name}", f"client:{client}"]
        failures = await self._repository.failures(keys)
        limits = [self._settings.signin_failures_per_account, self._settings.signin_failures_per_client]
        blocked = [
            throttled_until(failures[key], now, self._window, limit) for key, limit in zip(keys, limits, strict=True)
        ]
        if any(blocked):
            return Throttled(max(until for until in blocked if until))
        account = await self._repository.account(name)
        if not password_matches(account.password_hash if account else _DUMMY_HASH, password) or (
            account is None or account.disabled
        ):
            await self._repository.record_failure(keys, now)
            return Refused()
        if _hasher.check_needs_rehash(account.password_hash):
            await self._repository.set_password(name, _hasher.hash(password))
        await self._repository.clear_failures(keys[0])
        await self._repository.signed_in(name, now)
        token = secrets.token_urlsafe(32)
        session = StaffSession(
            token_hash(token), name, secrets.token_urlsafe(32), now + timedelta(hours=self._settings.session_hours)
        )
        await self._repository.open_session(session)
        return SignedIn(token, session)

    async def session(self, token: str | None, now: datetime) -> StaffSession | None:
        """The live session of this cookie, if any; expired sessions and disabled accounts have none."""
        if not token:
            return None
        session = await self._repository.session(token_hash(token))
        if session is None or session.expires_at <= now:
            return None
        account = await self._repository.account(session.username)
        return session if account is not None and not account.disabled else None

    async def sign_out(self, token: str) -> None:
        await self._repository.close_session(token_hash(token))

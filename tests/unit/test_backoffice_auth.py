"""Staff sign-in with an in-memory repository: accounts, sessions, throttling per account and client."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from services.backoffice.auth import Refused, SignedIn, StaffAuth, Throttled, hash_password, token_hash
from services.backoffice.repository import StaffAccount, StaffSession
from services.backoffice.settings import BackofficeSettings
from tests.backoffice_builders import T0

PASSWORD = "correct horse battery"


class FakeStaff:
    def __init__(self) -> None:
        self.accounts_by_name: dict[str, StaffAccount] = {}
        self.sessions: dict[str, StaffSession] = {}
        self.failure_log: dict[str, list[datetime]] = {}
        self.audit_log: list[tuple[str, str, str]] = []

    async def account(self, name: str) -> StaffAccount | None:
        return self.accounts_by_name.get(name)

    async def add_account(self, name: str, password_hash: str, at: datetime) -> bool:
        if name in self.accounts_by_name:
            return False
        self.accounts_by_name[name] = StaffAccount(name, password_hash, False, at)
        return True

    async def set_password(self, name: str, password_hash: str) -> None:
        account = self.accounts_by_name[name]
        self.accounts_by_name[name] = StaffAccount(name, password_hash, account.disabled, account.created_at)

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        account = self.accounts_by_name[name]
        self.accounts_by_name[name] = StaffAccount(name, account.password_hash, disabled, account.created_at)
        return True

    async def accounts(self) -> list[StaffAccount]:
        return list(self.accounts_by_name.values())

    async def signed_in(self, name: str, at: datetime) -> None:
        pass

    async def open_session(self, session: StaffSession) -> None:
        self.sessions[session.token_hash] = session

    async def session(self, token_hash: str) -> StaffSession | None:
        return self.sessions.get(token_hash)

    async def close_session(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)

    async def failures(self, keys: Sequence[str]) -> dict[str, list[datetime]]:
        return {key: list(self.failure_log.get(key, [])) for key in keys}

    async def record_failure(self, keys: Sequence[str], at: datetime) -> None:
        for key in keys:
            self.failure_log.setdefault(key, []).append(at)

    async def clear_failures(self, key: str) -> None:
        self.failure_log.pop(key, None)

    async def audit(self, at: datetime, who: str, action: str, target: str, detail: str = "") -> None:
        self.audit_log.append((who, action, target))

    async def audit_entries(self, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        return [], len(self.audit_log)


@pytest.fixture
async def staff() -> FakeStaff:
    repository = FakeStaff()
    await repository.add_account("agent", hash_password(PASSWORD), T0)
    return repository


def auth_of(staff: FakeStaff, **settings: Any) -> StaffAuth:
    return StaffAuth(staff, BackofficeSettings(staff_bootstrap=None, **settings))


async def test_the_right_password_opens_a_session_that_expires(staff: FakeStaff) -> None:
    auth = auth_of(staff, session_hours=8)
    outcome = await auth.sign_in("agent", PASSWORD, "10.0.0.1", T0)
    assert isinstance(outcome, SignedIn)
    assert outcome.session.token_hash == token_hash(outcome.token)
    assert await auth.session(outcome.token, T0 + timedelta(hours=7)) == outcome.session
    assert await auth.session(outcome.token, T0 + timedelta(hours=8)) is None
    assert await auth.session("forged", T0) is None
    await auth.sign_out(outcome.token)
    assert await auth.session(outcome.token, T0) is None


async def test_wrong_passwords_unknown_and_disabled_accounts_are_refused_alike(staff: FakeStaff) -> None:
    auth = auth_of(staff)
    assert isinstance(await auth.sign_in("agent", "wrong password!", "c", T0), Refused)
    assert isinstance(await auth.sign_in("nobody", PASSWORD, "c", T0), Refused)
    signed_in = await auth.sign_in("agent", PASSWORD, "c", T0)
    assert isinstance(signed_in, SignedIn)
    await staff.set_disabled("agent", True)
    assert isinstance(await auth.sign_in("agent", PASSWORD, "c", T0), Refused)
    assert await auth.session(signed_in.token, T0) is None  # a disabled account's session ends


async def test_an_account_is_throttled_after_repeated_failures_even_with_the_right_password(staff: FakeStaff) -> None:
    auth = auth_of(staff, signin_failures_per_account=3, signin_window_minutes=15)
    for attempt in range(3):
        assert isinstance(await auth.sign_in("agent", "guess", f"client-{attempt}", T0), Refused)
    throttled = await auth.sign_in("agent", PASSWORD, "another", T0 + timedelta(minutes=1))
    assert throttled == Throttled(T0 + timedelta(minutes=15))
    assert isinstance(await auth.sign_in("agent", PASSWORD, "another", T0 + timedelta(minutes=15, seconds=1)), SignedIn)
    assert "account:agent" not in staff.failure_log  # a success clears the account's failures


async def test_one_client_is_throttled_across_accounts(staff: FakeStaff) -> None:
    auth = auth_of(staff, signin_failures_per_client=4, signin_failures_per_account=100)
    for name in ("a", "b", "c", "d"):
        assert isinstance(await auth.sign_in(name, "guess", "10.0.0.9", T0), Refused)
    assert isinstance(await auth.sign_in("agent", PASSWORD, "10.0.0.9", T0), Throttled)
    assert isinstance(await auth.sign_in("agent", PASSWORD, "10.0.0.10", T0), SignedIn)


async def test_the_bootstrap_account_is_created_once_and_never_overwritten(staff: FakeStaff) -> None:
    auth = StaffAuth(staff, BackofficeSettings(staff_bootstrap=SecretStr("admin:first-password-1")))
    assert await auth.bootstrap(T0)
    staff.accounts_by_name["admin"] = StaffAccount("admin", hash_password("changed-by-hand"), False, T0)
    assert not await auth.bootstrap(T0)
    assert isinstance(await auth.sign_in("admin", "changed-by-hand", "c", T0), SignedIn)
    assert not await StaffAuth(staff, BackofficeSettings(staff_bootstrap=None)).bootstrap(T0)


def test_short_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="12 characters"):
        hash_password("short")

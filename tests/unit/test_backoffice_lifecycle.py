"""The workspace's own start-up and shutdown actions: the store's indexes before the start-up account,
and the running handlers told to stop before the commitments being published are awaited."""

import asyncio
import logging
from datetime import datetime

import pytest

from services.backoffice.lifecycle import prepare_store, stop_serving

LOGGER = logging.getLogger("test.backoffice.lifecycle")


class Repository:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def ensure_indexes(self) -> None:
        self.log.append(f"indexes {self.name}")


class Auth:
    def __init__(self, log: list[str], creates: bool) -> None:
        self.log, self.creates = log, creates

    async def bootstrap(self, at: datetime) -> bool:
        self.log.append("bootstrap")
        return self.creates


@pytest.mark.parametrize("creates", [True, False])
async def test_the_indexes_come_before_the_start_up_account(creates: bool, caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    with caplog.at_level(logging.INFO, LOGGER.name):
        await prepare_store([Repository(log, "staff"), Repository(log, "texts")], Auth(log, creates), LOGGER)
    assert log == ["indexes staff", "indexes texts", "bootstrap"]
    created = [r.message for r in caplog.records if r.message == "staff account created from COD_STAFF_BOOTSTRAP"]
    assert len(created) == int(creates)


async def test_the_handlers_are_told_to_stop_before_the_commitments_drain() -> None:
    stopping = asyncio.Event()
    seen: list[bool] = []

    class Commitments:
        async def drain(self) -> None:
            seen.append(stopping.is_set())

    await stop_serving(stopping, Commitments())
    assert seen == [True]

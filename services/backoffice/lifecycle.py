"""What the workspace does of its own at start-up and shutdown, around the shared steps of `Startup`."""

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from shared.contracts import utc_now

__all__ = ["prepare_store", "stop_serving"]


class Indexed(Protocol):
    async def ensure_indexes(self) -> None: ...


class AccountBootstrap(Protocol):
    async def bootstrap(self, at: datetime) -> bool: ...


class Draining(Protocol):
    async def drain(self) -> None: ...


async def prepare_store(repositories: Iterable[Indexed], auth: AccountBootstrap, logger: logging.Logger) -> None:
    """Create the repositories' indexes, then the start-up staff account if it does not exist yet."""
    for repository in repositories:
        await repository.ensure_indexes()
    if await auth.bootstrap(utc_now()):
        logger.info("staff account created from COD_STAFF_BOOTSTRAP")


async def stop_serving(stopping: asyncio.Event, commitments: Draining) -> None:
    """The first step of the shutdown, before the views and the broker stop."""
    stopping.set()  # live pages end their streams; a batch retrying in place gives up, uncommitted
    await commitments.drain()

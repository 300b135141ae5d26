"""Ingest's outbox shortens aiokafka's retry after CONCURRENT_TRANSACTIONS, through a module constant of
aiokafka's sender: these tests fail if an upgrade of aiokafka stops reading it."""

import asyncio
import itertools
import logging
from types import SimpleNamespace

import pytest
from aiokafka.errors import ConcurrentTransactions
from aiokafka.producer import sender as aiokafka_sender
from aiokafka.producer.sender import AddPartitionsToTxnHandler

from services.ingest.outbox import CONCURRENT_RETRY_S, GroupCommitProducer, retry_concurrent_transactions_after


def _retry_after_concurrent_transactions(partitions_in_transaction: set[object]) -> float | None:
    manager = SimpleNamespace(txn_partitions=partitions_in_transaction, partition_added=lambda tp: None)
    sender = SimpleNamespace(_txn_manager=manager, _retry_backoff=0.1)
    handler = AddPartitionsToTxnHandler(sender, [])
    answer = SimpleNamespace(errors=[("response.submitted.v1", [(0, ConcurrentTransactions.errno)])])
    return handler.handle_response(answer)  # type: ignore[no-any-return]


@pytest.fixture
def restore_backoff() -> object:
    saved = aiokafka_sender.BACKOFF_OVERRIDE
    yield
    aiokafka_sender.BACKOFF_OVERRIDE = saved


@pytest.mark.usefixtures("restore_backoff")
def test_a_new_transaction_meeting_the_previous_markers_is_retried_after_the_outbox_delay() -> None:
    retry_concurrent_transactions_after(CONCURRENT_RETRY_S)
    assert _retry_after_concurrent_transactions(set()) == CONCURRENT_RETRY_S
    assert CONCURRENT_RETRY_S < 0.02


@pytest.mark.usefixtures("restore_backoff")
def test_a_transaction_already_under_way_keeps_the_ordinary_backoff() -> None:
    retry_concurrent_transactions_after(CONCURRENT_RETRY_S)
    assert _retry_after_concurrent_transactions({"a partition"}) == 0.1


async def test_the_lanes_begin_their_transactions_in_turn_an_interval_apart() -> None:
    outbox = GroupCommitProducer(
        "localhost:1", "unused", 1.0, logging.getLogger("test"), lanes=3, commit_interval_s=0.03
    )
    loop = asyncio.get_running_loop()
    turns: list[float] = []

    async def lane() -> None:
        await outbox._wait_turn()
        turns.append(loop.time())

    await asyncio.gather(lane(), lane(), lane())
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    assert len(gaps) == 2
    assert all(gap >= 0.029 for gap in gaps)

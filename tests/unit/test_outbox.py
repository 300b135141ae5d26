"""Ingest's outbox shortens aiokafka's retry after CONCURRENT_TRANSACTIONS, through a module constant of
aiokafka's sender: these tests fail if an upgrade of aiokafka stops reading it."""

from types import SimpleNamespace

import pytest
from aiokafka.errors import ConcurrentTransactions
from aiokafka.producer import sender as aiokafka_sender
from aiokafka.producer.sender import AddPartitionsToTxnHandler

from services.ingest.outbox import CONCURRENT_RETRY_S, retry_concurrent_transactions_after


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

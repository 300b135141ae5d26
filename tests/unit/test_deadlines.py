"""Ingest's accept deadline and the publisher's settle come from one setting, in the right order."""

import pytest

from services.ingest.settings import IngestSettings
from services.publisher.settings import PublisherSettings


@pytest.mark.parametrize("timeout_s", [0.5, 2.0, 5.0, 30.0])
def test_the_publisher_settles_longer_than_ingest_may_take_to_answer(timeout_s: float) -> None:
    ingest = IngestSettings(kafka_produce_timeout_s=timeout_s)
    publisher = PublisherSettings(kafka_produce_timeout_s=timeout_s)
    assert ingest.accept_deadline_s == timeout_s
    assert publisher.settle_s > ingest.accept_deadline_s

"""Ingest's settings that its guarantees rest on: the accept deadline and the publisher's settle come
from one setting, in the right order; transactional ids are stable per replica slot."""

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from services.ingest.settings import IngestSettings
from services.publisher.settings import PublisherSettings


@pytest.mark.parametrize("timeout_s", [0.5, 2.0, 5.0, 30.0])
def test_the_publisher_settles_longer_than_ingest_may_take_to_answer(timeout_s: float) -> None:
    ingest = IngestSettings(kafka_produce_timeout_s=timeout_s)
    publisher = PublisherSettings(kafka_produce_timeout_s=timeout_s)
    assert ingest.accept_deadline_s == timeout_s
    assert publisher.settle_s > ingest.accept_deadline_s


def test_a_replacement_in_the_same_slot_has_the_same_transactional_ids_whatever_its_host() -> None:
    first = IngestSettings(ingest_slot=3, instance="ingest-3-old").transactional_id("node-a")
    replacement = IngestSettings(ingest_slot=3, instance="ingest-3-new").transactional_id("node-b")
    assert first == replacement == "cod-ingest-3"
    assert IngestSettings(ingest_slot=4).transactional_id("node-a") != first
    # Without a slot (development), two local replicas on one host still differ by port.
    assert IngestSettings(http_port=8000).transactional_id("h") != IngestSettings(http_port=8010).transactional_id("h")


def test_production_needs_a_slot() -> None:
    secrets = {
        "admin_token": SecretStr("a" * 32),
        "pseudonym_secret": SecretStr("p"),
        "followup_key": SecretStr(Fernet.generate_key().decode()),
    }
    with pytest.raises(ValidationError, match="COD_INGEST_SLOT"):
        IngestSettings(environment="production", **secrets)  # type: ignore[arg-type]
    assert IngestSettings(environment="production", ingest_slot=0, **secrets).ingest_slot == 0  # type: ignore[arg-type]

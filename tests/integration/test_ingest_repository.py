"""Ingest's respondent store against the real MongoDB-compatible server: new respondents are inserted,
returning ones upserted, and an insert that finds its document there is applied as the upsert."""

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import AsyncMongoClient

from deploy.local.infra import Infra
from services.ingest.domain import accept
from services.ingest.repository import MongoRespondentStore, StoredAnswer
from tests.service.builders import form

SECRET = b"test-secret-of-32-bytes-at-least!"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
async def store(infra: Infra) -> AsyncIterator[MongoRespondentStore]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    yield MongoRespondentStore(client, f"test_{uuid.uuid4().hex[:8]}", logging.getLogger("test"))
    await client.close()


async def test_new_and_returning_respondents_are_remembered_with_their_latest_form(
    store: MongoRespondentStore,
) -> None:
    first, token = accept(form(), "c1", "first-answer", T0, SECRET)
    await store.record(first, form(), "digest-1")
    await store._flush()
    amended = form(respondent={"profile": "researcher", "token": token})
    later, _ = accept(amended, "c1", "amendment", T0 + timedelta(minutes=5), SECRET)
    earlier, _ = accept(amended, "c1", "late-retry", T0 + timedelta(minutes=1), SECRET)
    await store.record(later, amended, "digest-2")
    await store.record(earlier, amended, "digest-3")  # older: it must not replace the latest form
    await store._flush()

    key = first.respondent_key
    assert later.respondent_key == key
    assert await store.previous_answer("c1", key, "first-answer") == StoredAnswer(T0, "digest-1")
    assert await store.previous_answer("c1", key, "amendment") == StoredAnswer(T0 + timedelta(minutes=5), "digest-2")
    latest = await store.latest_form("c1", key)
    assert latest is not None
    assert latest["respondent"]["profile"] == "researcher"


async def test_a_new_respondent_already_stored_is_upserted_not_lost(store: MongoRespondentStore) -> None:
    event, _ = accept(form(), "c1", "only-answer", T0, SECRET)
    await store.record(event, form(), "digest-1")
    await store._flush()
    # The same respondent recorded again as new (a retry racing the first attempt), with a newer answer.
    again = event.model_copy(update={"response_id": "second", "event_id": "second", "received_at": T0 + timedelta(1)})
    newer_form = form(respondent={"profile": "company"})
    await store.record(again, newer_form, "digest-2")
    await store._flush()

    key = event.respondent_key
    assert await store.previous_answer("c1", key, "only-answer") == StoredAnswer(T0, "digest-1")
    assert await store.previous_answer("c1", key, "second") == StoredAnswer(T0 + timedelta(1), "digest-2")
    latest = await store.latest_form("c1", key)
    assert latest is not None
    assert latest["respondent"]["profile"] == "company"

"""The publisher's file store against the real MongoDB-compatible server: a new version of a file
(the commitments changed) replaces the old one whole, an unchanged file is not written again, and
files stored before chunks were keyed by their hash still read and are replaced."""

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from deploy.local.infra import Infra
from services.publisher.repository import CHUNK_BYTES, MongoResultsRepository, StoredFile
from tests.publisher_builders import results_event

Document = dict[str, object]


@pytest.fixture
async def client(infra: Infra) -> AsyncIterator[AsyncMongoClient[Document]]:
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    yield mongo
    await mongo.close()


async def test_a_new_version_of_a_file_replaces_the_old_one_and_its_chunks(client: AsyncMongoClient[Document]) -> None:
    database = f"test_{uuid.uuid4().hex[:8]}"
    repository = MongoResultsRepository(client, database)
    await repository.ensure_indexes()
    chunks = client[database]["result_file_chunks"]
    results = results_event("c1", 3)
    big = bytes(range(256)) * (CHUNK_BYTES // 256 + 10)  # two chunks
    await repository.save(results, {"a.csv": b"frozen", "engagements.csv": big})
    await repository.save(results, {"a.csv": b"frozen", "engagements.csv": b"short now"})

    found = await repository.get("c1")
    assert found is not None
    assert await repository.file("c1", found.files["engagements.csv"]) == b"short now"
    assert await repository.file("c1", found.files["a.csv"]) == b"frozen"
    assert await chunks.count_documents({"consultation_id": "c1", "name": "engagements.csv"}) == 1

    # The same files again (a redelivery, a second replica): the same documents.
    before = await chunks.find({"consultation_id": "c1"}).sort("_id").to_list()
    await repository.save(results, {"a.csv": b"frozen", "engagements.csv": b"short now"})
    assert await chunks.find({"consultation_id": "c1"}).sort("_id").to_list() == before
    await repository.release("c1", results.closes_at)
    assert (await repository.get("c1")).released_at is not None  # type: ignore[union-attr]


async def test_files_stored_by_position_still_read_and_are_replaced(client: AsyncMongoClient[Document]) -> None:
    database = f"test_{uuid.uuid4().hex[:8]}"
    repository = MongoResultsRepository(client, database)
    db = client[database]
    results = results_event("c1", 3)
    data = b"stored before"
    # As the publisher stored files before chunks were keyed by their hash.
    await db["result_file_chunks"].insert_one(
        {"_id": "c1/a.csv/0", "consultation_id": "c1", "name": "a.csv", "n": 0, "data": data}
    )
    sha256 = hashlib.sha256(data).hexdigest()
    await db["results"].insert_one(
        {
            "_id": "c1",
            "json": results.model_dump_json(),
            "files": {"a.csv": {"sha256": sha256, "size": len(data), "chunks": 1}},
        }
    )
    found = await repository.get("c1")
    assert found is not None
    assert found.files["a.csv"] == StoredFile("a.csv", sha256, len(data), 1)
    assert await repository.file("c1", found.files["a.csv"]) == data

    await repository.save(results, {"a.csv": data, "engagements.csv": b"new"})
    found = await repository.get("c1")
    assert found is not None
    assert found.files["a.csv"].addressed
    assert await repository.file("c1", found.files["a.csv"]) == data
    assert await db["result_file_chunks"].count_documents({"_id": "c1/a.csv/0"}) == 0

"""Where the publisher keeps the results and the files it serves: a Protocol and its MongoDB
implementation.

Files are stored in chunks (a consultation of 200,000 responses has archive files larger than a
MongoDB document may be), each keyed by consultation, file, SHA-256 and position, so writing the same
file twice (a restart, or two replicas) writes the same documents, and a new version of a file (the
commitments change after the close) never overwrites the chunks the manifest in force points to. The
results document, with the manifest of the files and their SHA-256, is written last: when it exists,
every file it names is complete. Chunks of versions the new manifest no longer names are deleted after
it is written; a version already stored is not written again.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo import ASCENDING, AsyncMongoClient, ReplaceOne

from shared.contracts import ResultsPublished

Document = dict[str, Any]
CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    size: int
    chunks: int
    addressed: bool = False  # chunks keyed by the file's SHA-256 (files stored before that: by position only)


@dataclass(frozen=True)
class Publication:
    results: ResultsPublished
    files: dict[str, StoredFile]
    released_at: datetime | None


class ResultsRepository(Protocol):
    async def get(self, consultation_id: str) -> Publication | None: ...

    async def save(self, results: ResultsPublished, files: Mapping[str, bytes]) -> None: ...

    async def file(self, consultation_id: str, stored: StoredFile) -> bytes: ...

    async def release(self, consultation_id: str, at: datetime) -> None: ...


class MongoResultsRepository:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client[database]
        self._results = db["results"]
        self._chunks = db["result_file_chunks"]

    async def get(self, consultation_id: str) -> Publication | None:
        doc = await self._results.find_one({"_id": consultation_id, "files": {"$exists": True}})
        if doc is None:
            return None
        return Publication(
            ResultsPublished.model_validate_json(doc["json"]),
            {name: StoredFile(name, **meta) for name, meta in doc["files"].items()},
            doc.get("released_at"),
        )

    async def save(self, results: ResultsPublished, files: Mapping[str, bytes]) -> None:
        """Idempotent: the same results and files give the same documents, whoever writes them."""
        cid = results.consultation_id
        current = await self._results.find_one({"_id": cid}, {"files": 1})
        previous: dict[str, Document] = (current or {}).get("files") or {}
        manifest: dict[str, Document] = {}
        for name, data in files.items():
            sha256 = hashlib.sha256(data).hexdigest()
            parts = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
            manifest[name] = {"sha256": sha256, "size": len(data), "chunks": len(parts), "addressed": True}
            if previous.get(name) == manifest[name]:
                continue
            await self._chunks.bulk_write(
                [
                    ReplaceOne(
                        {"_id": f"{cid}/{name}/{sha256}/{n}"},
                        {
                            "_id": f"{cid}/{name}/{sha256}/{n}",
                            "consultation_id": cid,
                            "name": name,
                            "sha256": sha256,
                            "n": n,
                            "data": part,
                        },
                        upsert=True,
                    )
                    for n, part in enumerate(parts)
                ],
                ordered=False,
            )
        await self._results.update_one(
            {"_id": cid}, {"$set": {"json": results.model_dump_json(), "files": manifest}}, upsert=True
        )
        superseded = [
            {"name": name, "sha256": {"$ne": manifest[name]["sha256"]}}
            for name in sorted(manifest)
            if previous.get(name) != manifest[name]
        ]
        superseded += [{"name": name} for name in sorted(set(previous) - set(manifest))]
        if superseded:
            await self._chunks.delete_many({"consultation_id": cid, "$or": superseded})

    async def file(self, consultation_id: str, stored: StoredFile) -> bytes:
        parts = []
        query: Document = {"consultation_id": consultation_id, "name": stored.name, "n": {"$lt": stored.chunks}}
        if stored.addressed:
            query["sha256"] = stored.sha256
        cursor = self._chunks.find(query).sort("n", ASCENDING)
        async for doc in cursor:
            parts.append(bytes(doc["data"]))
        data = b"".join(parts)
        if hashlib.sha256(data).hexdigest() != stored.sha256:
            raise RuntimeError(f"stored file {consultation_id}/{stored.name} does not match its manifest")
        return data

    async def release(self, consultation_id: str, at: datetime) -> None:
        """Make the results public from `at` (the earliest release wins)."""
        await self._results.update_one({"_id": consultation_id}, {"$min": {"released_at": at}}, upsert=True)

    async def ensure_indexes(self) -> None:
        await self._chunks.create_index([("consultation_id", ASCENDING), ("name", ASCENDING), ("n", ASCENDING)])

"""Where the publisher keeps the results it serves: a Protocol and its MongoDB implementation."""

from typing import Any, Protocol

from pymongo import AsyncMongoClient

from shared.contracts import ResultsPublished

Document = dict[str, Any]


class ResultsRepository(Protocol):
    async def get(self, consultation_id: str) -> ResultsPublished | None: ...

    async def save(self, results: ResultsPublished) -> None: ...


class MongoResultsRepository:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._results = client[database]["results"]

    async def get(self, consultation_id: str) -> ResultsPublished | None:
        doc = await self._results.find_one({"_id": consultation_id})
        return ResultsPublished.model_validate_json(doc["json"]) if doc else None

    async def save(self, results: ResultsPublished) -> None:
        """Idempotent: the results are those committed in Kafka, the same on every call."""
        await self._results.replace_one(
            {"_id": results.consultation_id},
            {"_id": results.consultation_id, "json": results.model_dump_json()},
            upsert=True,
        )

    async def ping(self) -> None:
        await self._results.database.command("ping")

"""What ingest remembers of respondents: a Protocol and its MongoDB implementation.

Per respondent of a consultation, one document: the answers already given (by submission id, to
answer a retried POST exactly as the first time) and the latest submission's form (to pre-fill the
form when the respondent comes back with their token). Neither the token nor the e-mail is stored.

Kafka, not this store, is where an accepted response lives; so records are written behind, in
batches (one bulk write per flush), off the request's path. Until flushed, a record is answered
from memory. A crash loses at most the unflushed records: a retry of one of those is then counted
once all the same (downstream deduplicates by response id) but answered with a new receipt time.

A respondent who brought no token (and no response id of their own) is new: their document is
inserted, several times cheaper for the store than the conditional upsert a returning respondent
needs. Should it exist after all (a retry racing the first attempt), the upsert is applied instead.
"""

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo import AsyncMongoClient, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from shared.contracts import ResponseForm, ResponseSubmitted

Document = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class StoredAnswer:
    received_at: datetime
    body_digest: str


class RespondentStore(Protocol):
    async def previous_answer(
        self, consultation_id: str, respondent_key: str, response_id: str
    ) -> StoredAnswer | None: ...

    async def record(self, event: ResponseSubmitted, form: ResponseForm, body_digest: str) -> None: ...

    async def latest_form(self, consultation_id: str, respondent_key: str) -> dict[str, Any] | None: ...

    async def forget(self, consultation_id: str, respondent_key: str) -> None: ...


def _id(consultation_id: str, respondent_key: str) -> str:
    return f"{consultation_id}|{respondent_key}"


class MongoRespondentStore:
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        logger: logging.Logger,
        flush_interval_s: float = 0.05,
        max_batch: int = 1000,
    ) -> None:
        self._respondents = client[database]["respondents"]
        self._logger = logger
        self._flush_interval_s = flush_interval_s
        self._max_batch = max_batch
        self._pending: dict[tuple[str, str], dict[str, StoredAnswer]] = {}
        self._writing: dict[tuple[str, str], dict[str, StoredAnswer]] = {}
        # Each write with the upsert that replaces it when an insert finds the document there.
        self._queue: list[tuple[InsertOne[Document] | UpdateOne, UpdateOne]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One flush at a time: a reader flushing first must wait for a write already under way.
        self._flushing = asyncio.Lock()

    async def ping(self) -> None:
        await self._respondents.database.command("ping")

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_behind(), name="respondent-store")

    async def stop(self) -> None:
        """Flush what is pending, then stop."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()

    async def previous_answer(self, consultation_id: str, respondent_key: str, response_id: str) -> StoredAnswer | None:
        for unwritten in (self._pending, self._writing):
            answer = unwritten.get((consultation_id, respondent_key), {}).get(response_id)
            if answer is not None:
                return answer
        doc = await self._respondents.find_one(
            {"_id": _id(consultation_id, respondent_key)}, {f"answers.{response_id}": 1}
        )
        answer = (doc or {}).get("answers", {}).get(response_id)
        return StoredAnswer(answer["received_at"], answer["body_digest"]) if answer else None

    async def record(self, event: ResponseSubmitted, form: ResponseForm, body_digest: str) -> None:
        """Remember the answer, and the form if it is the respondent's latest (written behind)."""
        stored_form = form.model_dump(mode="json", exclude={"response_id": True, "respondent": {"token", "email"}})
        latest = {"received_at": event.received_at, "response_id": event.response_id, "form": stored_form}
        answer = {"received_at": event.received_at, "body_digest": body_digest}
        newer = {"$gt": [event.received_at, {"$ifNull": ["$latest.received_at", EPOCH]}]}
        doc_id = _id(event.consultation_id, event.respondent_key)
        upsert = UpdateOne(
            {"_id": doc_id},
            [
                {
                    "$set": {
                        "consultation_id": event.consultation_id,
                        # Literal: respondents' free text must never be read as pipeline expressions.
                        "latest": {"$cond": [newer, {"$literal": latest}, "$latest"]},
                        f"answers.{event.response_id}": {"$literal": answer},
                    }
                }
            ],
            upsert=True,
        )
        if form.respondent.token is None and form.response_id is None:
            new = {"_id": doc_id, "consultation_id": event.consultation_id, "latest": latest}
            self._queue.append((InsertOne(new | {"answers": {event.response_id: answer}}), upsert))
        else:
            self._queue.append((upsert, upsert))
        key = (event.consultation_id, event.respondent_key)
        self._pending.setdefault(key, {})[event.response_id] = StoredAnswer(event.received_at, body_digest)
        if len(self._queue) >= self._max_batch:
            self._wake.set()

    async def forget(self, consultation_id: str, respondent_key: str) -> None:
        """Forget a respondent's latest form (they withdrew): the amend page pre-fills nothing."""
        await self._flush()  # a record still written behind would bring it back
        await self._respondents.update_one({"_id": _id(consultation_id, respondent_key)}, {"$unset": {"latest": ""}})

    async def _write_behind(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval_s)
            self._wake.clear()
            try:
                await self._flush()
            except Exception:
                self._logger.exception("respondent records not written; retrying")
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        """Write what is queued; return once everything queued before the call is written (a reader
        such as `latest_form` must not read past a write the background task has under way)."""
        async with self._flushing:
            await self._flush_queued()

    async def _flush_queued(self) -> None:
        if not self._queue:
            return
        batch, pending = self._queue, self._pending
        self._queue, self._pending = [], {}
        for key, answers in pending.items():
            self._writing.setdefault(key, {}).update(answers)
        try:
            await self._write(batch)
        except Exception:
            self._queue = batch + self._queue
            for key, answers in pending.items():
                self._pending.setdefault(key, {}).update(answers)
            raise
        finally:
            for key, answers in pending.items():
                written = self._writing.get(key, {})
                for response_id in answers:
                    written.pop(response_id, None)
                if not written:
                    self._writing.pop(key, None)

    async def _write(self, batch: list[tuple[InsertOne[Document] | UpdateOne, UpdateOne]]) -> None:
        """One bulk write; the inserts that found their document there are applied as upserts. Every
        write is idempotent and the upserts keep the newest form whatever their order: unordered."""
        try:
            await self._respondents.bulk_write([write for write, _ in batch], ordered=False)
        except BulkWriteError as error:
            failed = error.details.get("writeErrors", [])
            if not failed or any(e.get("code") != DUPLICATE_KEY for e in failed):
                raise
            await self._respondents.bulk_write([batch[e["index"]][1] for e in failed], ordered=False)

    async def latest_form(self, consultation_id: str, respondent_key: str) -> dict[str, Any] | None:
        await self._flush()
        doc = await self._respondents.find_one({"_id": _id(consultation_id, respondent_key)}, {"latest.form": 1})
        form = (doc or {}).get("latest", {}).get("form")
        return dict(form) if form else None


class EmailIdentity(Protocol):
    """Who first answered with an e-mail address, and the answers held until their address confirms them."""

    async def nonce(self, consultation_id: str, email_hash: str) -> bytes | None: ...

    async def remember(self, consultation_id: str, email_hash: str, nonce: bytes) -> None: ...

    async def hold(self, pending_id: str, held: Document) -> bool: ...

    async def mailed(self, pending_id: str) -> None: ...

    async def held(self, pending_id: str) -> Document | None: ...

    async def release(self, pending_id: str) -> None: ...


class MongoEmailIdentity:
    """`emails`: per consultation and keyed e-mail hash, the token nonce of the first respondent who gave it
    (never the address). `pending`: an answer given again with that address, held until the link sent to
    the address is followed, for `COD_PENDING_HOURS` at most."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._emails = client[database]["emails"]
        self._pending = client[database]["pending"]

    async def ensure_indexes(self) -> None:
        await self._pending.create_index("expires_at", expireAfterSeconds=0)

    async def nonce(self, consultation_id: str, email_hash: str) -> bytes | None:
        doc = await self._emails.find_one({"_id": f"{consultation_id}|{email_hash}"})
        return bytes.fromhex(doc["nonce"]) if doc else None

    async def remember(self, consultation_id: str, email_hash: str, nonce: bytes) -> None:
        await self._emails.update_one(
            {"_id": f"{consultation_id}|{email_hash}"}, {"$setOnInsert": {"nonce": nonce.hex()}}, upsert=True
        )

    async def hold(self, pending_id: str, held: Document) -> bool:
        """Hold an answer (once per id: a retried POST holds nothing new); whether its e-mail went out."""
        await self._pending.update_one({"_id": pending_id}, {"$setOnInsert": held | {"mailed": False}}, upsert=True)
        doc = await self._pending.find_one({"_id": pending_id}, {"mailed": 1})
        return bool(doc and doc.get("mailed"))

    async def mailed(self, pending_id: str) -> None:
        await self._pending.update_one({"_id": pending_id}, {"$set": {"mailed": True}})

    async def held(self, pending_id: str) -> Document | None:
        return await self._pending.find_one({"_id": pending_id})

    async def release(self, pending_id: str) -> None:
        await self._pending.delete_one({"_id": pending_id})

"""Where the follow-up e-mails keep their state in MongoDB, apart from the answers: the followers (address
still encrypted), the commitments as last recorded, and every e-mail claimed before it is sent.

A follower whose follow-up ended keeps a marker without address or titles, so that a redelivered request
never brings it back. An e-mail is claimed under its unique id before it is sent and marked after: a
claimed e-mail is never sent again, even when its mark is missing (at most once).
"""

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.backoffice.followup import EndReason, Follower
from shared.contracts import CommitmentRecorded, FollowUpRequested

__all__ = ["FollowUpRepository", "MongoFollowUpRepository", "StoredFollower"]

Document = dict[str, Any]


@dataclass(frozen=True)
class StoredFollower:
    follower: Follower
    email_encrypted: str


class FollowUpRepository(Protocol):
    async def ensure_indexes(self) -> None: ...
    async def add(self, requests: Sequence[FollowUpRequested], at: datetime) -> None: ...
    async def end(self, subscription_ids: Sequence[str], reason: EndReason, at: datetime) -> None: ...
    async def followers(self, subscription_ids: Sequence[str]) -> list[StoredFollower]: ...
    async def followers_of(self, consultation_id: str) -> list[StoredFollower]: ...
    async def followed_consultations(self) -> list[str]: ...
    async def record_commitments(self, commitments: Sequence[CommitmentRecorded]) -> None: ...
    async def commitments_of(self, consultation_id: str) -> list[CommitmentRecorded]: ...
    async def already_claimed(self, notification_ids: Sequence[str]) -> set[str]: ...
    async def claim(self, notification_id: str, at: datetime) -> bool: ...
    async def mark(self, notification_id: str, outcome: str, at: datetime) -> None: ...
    async def release(self, notification_id: str) -> None: ...


def _stored(doc: Document) -> StoredFollower:
    follower = Follower(
        doc["_id"], doc["consultation_id"], frozenset(doc["dataset_ids"]), tuple(doc.get("suggestion_titles", []))
    )
    return StoredFollower(follower, doc["email_encrypted"])


ACTIVE = {"email_encrypted": {"$exists": True}}


class MongoFollowUpRepository:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client[database]
        self._followers = db["followers"]
        self._commitments = db["followup_commitments"]
        self._notifications = db["followup_notifications"]

    async def ensure_indexes(self) -> None:
        await self._followers.create_index([("consultation_id", 1)])
        await self._commitments.create_index([("consultation_id", 1)])

    async def add(self, requests: Sequence[FollowUpRequested], at: datetime) -> None:
        """Keep each request; one already known (even ended) is left as it is."""
        if not requests:
            return
        await self._followers.bulk_write(
            [
                UpdateOne(
                    {"_id": r.subscription_id},
                    {
                        "$setOnInsert": {
                            "consultation_id": r.consultation_id,
                            "email_encrypted": r.email_encrypted,
                            "dataset_ids": r.dataset_ids,
                            "suggestion_titles": r.suggestion_titles,
                            "requested_at": r.occurred_at,
                            "stored_at": at,
                        }
                    },
                    upsert=True,
                )
                for r in requests
            ],
            ordered=False,
        )

    async def end(self, subscription_ids: Sequence[str], reason: EndReason, at: datetime) -> None:
        """Delete the address and the typed titles; keep a marker of the end."""
        if not subscription_ids:
            return
        await self._followers.bulk_write(
            [
                UpdateOne(
                    {"_id": s, "ended_at": {"$exists": False}},
                    {
                        "$unset": {"email_encrypted": "", "suggestion_titles": "", "dataset_ids": ""},
                        "$set": {"ended_at": at, "end_reason": reason.value},
                    },
                )
                for s in subscription_ids
            ],
            ordered=False,
        )
        # A tombstone read before its request (or alone, once compacted): mark it so the request stays out.
        for subscription_id in subscription_ids:
            with contextlib.suppress(DuplicateKeyError):
                await self._followers.update_one(
                    {"_id": subscription_id},
                    {"$setOnInsert": {"ended_at": at, "end_reason": reason.value}},
                    upsert=True,
                )

    async def followers(self, subscription_ids: Sequence[str]) -> list[StoredFollower]:
        cursor = self._followers.find({"_id": {"$in": list(subscription_ids)}, **ACTIVE})
        return [_stored(doc) async for doc in cursor]

    async def followers_of(self, consultation_id: str) -> list[StoredFollower]:
        cursor = self._followers.find({"consultation_id": consultation_id, **ACTIVE})
        return [_stored(doc) async for doc in cursor]

    async def followed_consultations(self) -> list[str]:
        return sorted(await self._followers.distinct("consultation_id", ACTIVE))

    async def record_commitments(self, commitments: Sequence[CommitmentRecorded]) -> None:
        """Keep each commitment's latest state; an older or redelivered one changes nothing."""
        for commitment in commitments:
            # A later state already kept: the upsert's insert collides with it, and that is fine.
            with contextlib.suppress(DuplicateKeyError):
                await self._commitments.update_one(
                    {"_id": commitment.key, "updated_at": {"$lte": commitment.updated_at}},
                    {
                        "$set": {
                            "consultation_id": commitment.consultation_id,
                            "updated_at": commitment.updated_at,
                            "commitment": commitment.model_dump(mode="json"),
                        }
                    },
                    upsert=True,
                )

    async def commitments_of(self, consultation_id: str) -> list[CommitmentRecorded]:
        cursor = self._commitments.find({"consultation_id": consultation_id}).sort("_id", 1)
        return [CommitmentRecorded.model_validate(doc["commitment"]) async for doc in cursor]

    async def already_claimed(self, notification_ids: Sequence[str]) -> set[str]:
        if not notification_ids:
            return set()
        cursor = self._notifications.find({"_id": {"$in": list(notification_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def claim(self, notification_id: str, at: datetime) -> bool:
        """True if this call claimed the e-mail; False if it was claimed before (sent, or being sent)."""
        subscription_id, commitment_key, kind = notification_id.split("|")
        try:
            await self._notifications.insert_one(
                {
                    "_id": notification_id,
                    "subscription_id": subscription_id,
                    "commitment_key": commitment_key,
                    "kind": kind,
                    "state": "sending",
                    "claimed_at": at,
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def mark(self, notification_id: str, outcome: str, at: datetime) -> None:
        await self._notifications.update_one({"_id": notification_id}, {"$set": {"state": outcome, "done_at": at}})

    async def release(self, notification_id: str) -> None:
        """Give a claim back after a send that certainly failed, so that it is tried again."""
        await self._notifications.delete_one({"_id": notification_id, "state": "sending"})

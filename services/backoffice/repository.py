"""Where the workspace keeps its own state in MongoDB: staff accounts, sessions, sign-in failures,
the audit log, and what respondents wrote (each respondent's latest submission only).

Storing a batch is idempotent and ordered by ingest's receipt order: a respondent's document moves to a
submission only if it is later than the one it holds, and only then are that respondent's texts replaced.
A redelivered or older submission changes nothing.
"""

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, DeleteMany, ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.backoffice.detection import Respondent
from services.backoffice.domain import (
    TextKind,
    asks_of,
    latest_per_respondent,
    local_day,
    order_key,
    respondent_id,
    texts_of,
)
from shared.contracts import ResponseEnriched

Document = dict[str, Any]


@dataclass(frozen=True)
class StaffAccount:
    name: str
    password_hash: str
    disabled: bool
    created_at: datetime
    last_signin_at: datetime | None = None


@dataclass(frozen=True)
class StaffSession:
    token_hash: str
    username: str
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class TextFilter:
    """Which texts of a consultation to show: a kind, and optionally words, a profile, an improvement
    kind and a dataset."""

    consultation_id: str
    kind: TextKind
    words: str = ""
    profile: str | None = None
    improvement: str | None = None
    dataset_id: str | None = None

    def query(self) -> Document:
        query: Document = {"consultation_id": self.consultation_id, "kind": self.kind.value}
        if self.words:
            query["search"] = {"$regex": re.escape(self.words)}
        if self.profile:
            query["profile"] = self.profile
        if self.improvement:
            query["kinds"] = self.improvement
        if self.dataset_id:
            query["dataset_id"] = self.dataset_id
        return query


def _text_order(kind: TextKind) -> list[tuple[str, int]]:
    """Improvement comments dataset by dataset; everything else newest first."""
    newest = [("received_at", DESCENDING), ("_id", ASCENDING)]
    return [("dataset_title", ASCENDING), *newest] if kind is TextKind.IMPROVEMENT else newest


class StaffRepository(Protocol):
    async def account(self, name: str) -> StaffAccount | None: ...
    async def add_account(self, name: str, password_hash: str, at: datetime) -> bool: ...
    async def set_password(self, name: str, password_hash: str) -> None: ...
    async def set_disabled(self, name: str, disabled: bool) -> bool: ...
    async def accounts(self) -> list[StaffAccount]: ...
    async def signed_in(self, name: str, at: datetime) -> None: ...
    async def open_session(self, session: StaffSession) -> None: ...
    async def session(self, token_hash: str) -> StaffSession | None: ...
    async def close_session(self, token_hash: str) -> None: ...
    async def failures(self, keys: Sequence[str]) -> dict[str, list[datetime]]: ...
    async def record_failure(self, keys: Sequence[str], at: datetime) -> None: ...
    async def clear_failures(self, key: str) -> None: ...
    async def audit(self, at: datetime, who: str, action: str, target: str, detail: str = "") -> None: ...
    async def audit_entries(self, skip: int, limit: int) -> tuple[list[Document], int]: ...


class ContributionRepository(Protocol):
    async def store(self, submissions: Sequence[ResponseEnriched], zone: tzinfo) -> int: ...
    async def texts(self, which: TextFilter, skip: int, limit: int) -> tuple[list[Document], int]: ...
    def all_texts(self, which: TextFilter) -> AsyncIterator[Document]: ...
    async def suggestion_groups(self, which: TextFilter, skip: int, limit: int) -> tuple[list[Document], int]: ...
    async def satisfaction(self, consultation_id: str) -> dict[int, int]: ...
    async def text(self, consultation_id: str, text_id: str) -> Document | None: ...
    async def group_title(self, consultation_id: str, group_key: str) -> str | None: ...
    async def improved_datasets(self, consultation_id: str) -> list[tuple[str, str]]: ...
    async def participation(self, consultation_id: str) -> tuple[dict[str, int], dict[str, int]]: ...
    async def respondents(self, consultation_id: str) -> list[Respondent]: ...


class MongoStaffRepository:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client[database]
        self._staff = db["staff"]
        self._sessions = db["sessions"]
        self._failures = db["signin_failures"]
        self._audit = db["audit"]

    async def ensure_indexes(self) -> None:
        await self._audit.create_index([("at", DESCENDING)])
        await self._sessions.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)

    @staticmethod
    def _account(doc: Document) -> StaffAccount:
        return StaffAccount(
            doc["_id"], doc["password_hash"], bool(doc.get("disabled")), doc["created_at"], doc.get("last_signin_at")
        )

    async def account(self, name: str) -> StaffAccount | None:
        doc = await self._staff.find_one({"_id": name})
        return self._account(doc) if doc else None

    async def add_account(self, name: str, password_hash: str, at: datetime) -> bool:
        try:
            await self._staff.insert_one(
                {"_id": name, "password_hash": password_hash, "disabled": False, "created_at": at}
            )
        except DuplicateKeyError:
            return False
        return True

    async def set_password(self, name: str, password_hash: str) -> None:
        await self._staff.update_one({"_id": name}, {"$set": {"password_hash": password_hash}})

    async def set_disabled(self, name: str, disabled: bool) -> bool:
        found = await self._staff.update_one({"_id": name}, {"$set": {"disabled": disabled}})
        if disabled:
            await self._sessions.delete_many({"username": name})
        return found.matched_count == 1

    async def accounts(self) -> list[StaffAccount]:
        return [self._account(doc) async for doc in self._staff.find().sort("_id", ASCENDING)]

    async def signed_in(self, name: str, at: datetime) -> None:
        await self._staff.update_one({"_id": name}, {"$set": {"last_signin_at": at}})

    async def open_session(self, session: StaffSession) -> None:
        await self._sessions.insert_one(
            {
                "_id": session.token_hash,
                "username": session.username,
                "csrf": session.csrf,
                "expires_at": session.expires_at,
            }
        )

    async def session(self, token_hash: str) -> StaffSession | None:
        doc = await self._sessions.find_one({"_id": token_hash})
        return StaffSession(doc["_id"], doc["username"], doc["csrf"], doc["expires_at"]) if doc else None

    async def close_session(self, token_hash: str) -> None:
        await self._sessions.delete_one({"_id": token_hash})

    async def failures(self, keys: Sequence[str]) -> dict[str, list[datetime]]:
        found = {doc["_id"]: list(doc.get("at", [])) async for doc in self._failures.find({"_id": {"$in": list(keys)}})}
        return {key: found.get(key, []) for key in keys}

    async def record_failure(self, keys: Sequence[str], at: datetime) -> None:
        for key in keys:
            await self._failures.update_one(
                {"_id": key}, {"$push": {"at": {"$each": [at], "$slice": -100}}}, upsert=True
            )

    async def clear_failures(self, key: str) -> None:
        await self._failures.delete_one({"_id": key})

    async def audit(self, at: datetime, who: str, action: str, target: str, detail: str = "") -> None:
        await self._audit.insert_one({"at": at, "who": who, "action": action, "target": target, "detail": detail})

    async def audit_entries(self, skip: int, limit: int) -> tuple[list[Document], int]:
        entries = [doc async for doc in self._audit.find({}, {"_id": 0}).sort("at", DESCENDING).skip(skip).limit(limit)]
        return entries, await self._audit.count_documents({})


class MongoContributionRepository:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client[database]
        self._respondents = db["respondents"]
        self._texts = db["texts"]

    async def ensure_indexes(self) -> None:
        await self._respondents.create_index([("consultation_id", ASCENDING)])
        await self._texts.create_index(
            [("consultation_id", ASCENDING), ("kind", ASCENDING), ("received_at", DESCENDING)]
        )
        await self._texts.create_index([("respondent", ASCENDING)])

    async def store(self, submissions: Sequence[ResponseEnriched], zone: tzinfo) -> int:
        """Move each respondent to their latest submission, if later than the one held, and replace
        their texts with that submission's; the number of respondents moved."""
        latest = latest_per_respondent(submissions)
        orders = {
            respondent_id(e.response.consultation_id, e.response.respondent_key): (
                order_key(e.response.received_at, e.response.response_id),
                e,
            )
            for e in latest
        }
        held = await self._orders(list(orders))
        newer = {rid: entry for rid, entry in orders.items() if (held.get(rid) or "") < entry[0]}
        if not newer:
            return 0
        steps: list[UpdateOne] = []
        for rid, (order, enriched) in newer.items():
            response = enriched.response
            steps.append(
                UpdateOne(
                    {"_id": rid},
                    {
                        "$min": {
                            "first_received_at": response.received_at,
                            "first_day": local_day(response.received_at, zone),
                        },
                        "$setOnInsert": {
                            "consultation_id": response.consultation_id,
                            "respondent_key": response.respondent_key,
                            "fingerprint": response.client_fingerprint,
                        },
                    },
                    upsert=True,
                )
            )
            # Conditional, should another writer have moved the respondent since the read above: moved
            # if it had no submission yet, or an earlier one. Two updates, not one with `$or`, which
            # SecantusDB answers with a scan of the whole collection (50 s for 300 at 20,000 respondents).
            move = {
                "$set": {
                    "order": order,
                    "profile": response.profile.value,
                    "withdrawn": response.withdrawn,
                    "response_id": response.response_id,
                    "last_received_at": response.received_at,
                    "fill_seconds": response.fill_seconds,
                    "asks": sorted(asks_of(enriched)),
                }
            }
            steps.append(UpdateOne({"_id": rid, "order": {"$exists": False}}, move))
            steps.append(UpdateOne({"_id": rid, "order": {"$lt": order}}, move))
        await self._respondents.bulk_write(steps, ordered=True)
        now_held = await self._orders(list(newer))
        writes: list[DeleteMany | ReplaceOne[Document]] = []
        moved = 0
        for rid, (order, enriched) in newer.items():
            if now_held.get(rid) != order:
                continue  # a later submission got there first
            moved += 1
            writes.append(DeleteMany({"respondent": rid, "order": {"$ne": order}}))
            for index, text in enumerate(texts_of(enriched, zone)):
                document = text | {"respondent": rid, "order": order}
                writes.append(ReplaceOne({"_id": f"{rid}|{order}|{index}"}, document, upsert=True))
        if writes:
            await self._texts.bulk_write(writes, ordered=True)
        return moved

    async def _orders(self, ids: list[str]) -> dict[str, str | None]:
        held = self._respondents.find({"_id": {"$in": ids}}, {"order": 1})
        return {doc["_id"]: doc.get("order") async for doc in held}

    async def texts(self, which: TextFilter, skip: int, limit: int) -> tuple[list[Document], int]:
        query = which.query()
        cursor = self._texts.find(query, {"respondent": 0, "order": 0}).sort(_text_order(which.kind))
        found = [doc async for doc in cursor.skip(skip).limit(limit)]
        return found, await self._texts.count_documents(query)

    async def all_texts(self, which: TextFilter) -> AsyncIterator[Document]:
        async for doc in self._texts.find(which.query(), {"respondent": 0, "order": 0}).sort(_text_order(which.kind)):
            yield doc

    async def suggestion_groups(self, which: TextFilter, skip: int, limit: int) -> tuple[list[Document], int]:
        """Suggestion groups as scoring groups them, most respondents first, each with its texts."""
        grouped = await self._texts.aggregate(
            [
                {"$match": which.query()},
                {"$group": {"_id": "$group_key", "title": {"$first": "$group_title"}, "respondents": {"$sum": 1}}},
                {"$sort": {"respondents": -1, "_id": 1}},
            ]
        )
        groups = [doc async for doc in grouped]
        page = groups[skip : skip + limit]
        members: dict[str, list[Document]] = {group["_id"]: [] for group in page}
        query = which.query() | {"group_key": {"$in": list(members)}}
        async for doc in self._texts.find(query, {"respondent": 0, "order": 0}).sort("received_at", DESCENDING):
            members[doc["group_key"]].append(doc)
        return [group | {"texts": members[group["_id"]]} for group in page], len(groups)

    async def text(self, consultation_id: str, text_id: str) -> Document | None:
        return await self._texts.find_one({"_id": text_id, "consultation_id": consultation_id})

    async def group_title(self, consultation_id: str, group_key: str) -> str | None:
        """The title a suggestion group is shown under, as the catalogue named it."""
        found = await self._texts.find_one({"consultation_id": consultation_id, "group_key": group_key})
        return str(found["group_title"]) if found else None

    async def satisfaction(self, consultation_id: str) -> dict[int, int]:
        counted = await self._texts.aggregate(
            [
                {"$match": {"consultation_id": consultation_id, "kind": TextKind.PLATFORM.value}},
                {"$group": {"_id": "$satisfaction", "n": {"$sum": 1}}},
            ]
        )
        found = {doc["_id"]: doc["n"] async for doc in counted}
        return {level: int(found.get(level, 0)) for level in range(1, 6)}

    async def improved_datasets(self, consultation_id: str) -> list[tuple[str, str]]:
        grouped = await self._texts.aggregate(
            [
                {"$match": {"consultation_id": consultation_id, "kind": TextKind.IMPROVEMENT.value}},
                {"$group": {"_id": "$dataset_id", "title": {"$first": "$dataset_title"}}},
            ]
        )
        return sorted([(doc["_id"], doc["title"]) async for doc in grouped], key=lambda d: d[1].casefold())

    async def respondents(self, consultation_id: str) -> list[Respondent]:
        """What stuffing detection reads of each counted respondent (withdrawn ones left out)."""
        query = {"consultation_id": consultation_id, "order": {"$exists": True}, "withdrawn": {"$ne": True}}
        found = []
        async for doc in self._respondents.find(query, {"_id": 0, "profile": 0, "first_day": 0}):
            if not doc.get("respondent_key"):
                continue  # stored before the workspace kept what detection reads
            found.append(
                Respondent(
                    key=doc["respondent_key"],
                    response_id=doc.get("response_id") or "",
                    first_at=doc["first_received_at"],
                    last_at=doc.get("last_received_at") or doc["first_received_at"],
                    fingerprint=doc.get("fingerprint"),
                    fill_seconds=doc.get("fill_seconds"),
                    datasets=frozenset(doc.get("asks") or ()),
                )
            )
        return found

    async def participation(self, consultation_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """Respondents by profile (of their latest submission) and new respondents by day."""
        by_profile = await self._respondents.aggregate(
            [
                {
                    "$match": {
                        "consultation_id": consultation_id,
                        "order": {"$exists": True},
                        "withdrawn": {"$ne": True},
                    }
                },
                {"$group": {"_id": "$profile", "n": {"$sum": 1}}},
            ]
        )
        profiles = {doc["_id"]: int(doc["n"]) async for doc in by_profile}
        by_day = await self._respondents.aggregate(
            [
                {"$match": {"consultation_id": consultation_id, "withdrawn": {"$ne": True}}},
                {"$group": {"_id": "$first_day", "n": {"$sum": 1}}},
            ]
        )
        days = {doc["_id"]: int(doc["n"]) async for doc in by_day}
        return profiles, days

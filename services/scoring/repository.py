"""Where scoring keeps ballots and ranking tallies: a Protocol and its MongoDB implementation.

Exactly-once counting rests on one transaction per batch: the replaced ballots (each carrying the
ids of every submission it has seen) and the tally increments they imply are committed together,
and the Kafka offsets only after. A redelivered batch then finds its submissions already in the
ballots' `seen` sets and changes nothing. Ballot writes are conditional on the version read, so two
replicas racing on one respondent (during a rebalance) cannot both apply a change: the loser
aborts, re-reads and re-plans.
"""

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pymongo
from pymongo import ASCENDING, AsyncMongoClient, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError

from services.scoring.domain import Ballot, BatchPlan, RowId, StoredRow, TallyField
from shared.contracts import ImprovementKind, Priority, Profile, RankingKind

Document = dict[str, Any]
DUPLICATE_KEY = 11000
TRANSACTION_TIMEOUT_S = 15.0


class BallotConflict(Exception):
    """Another writer changed a ballot since it was read; the batch must be re-planned."""


@dataclass(frozen=True)
class Totals:
    """A consultation's counts; `revision` grows with every committed change to its rankings."""

    respondents: int = 0
    responses: int = 0
    as_of: datetime | None = None
    revision: int = 0


class ScoringRepository(Protocol):
    async def load_ballots(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Ballot]: ...

    async def apply(self, plan: BatchPlan) -> None: ...

    async def rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]: ...

    async def totals(self, consultation_id: str) -> Totals: ...

    def ballots(self, consultation_id: str) -> AsyncIterator[Ballot]: ...


def _ballot_id(consultation_id: str, respondent_key: str) -> str:
    return f"{consultation_id}|{respondent_key}"


def _row_id(row: RowId) -> str:
    return f"{row.consultation_id}|{row.kind.value}|{row.key}"


def ballot_to_document(ballot: Ballot) -> Document:
    return {
        "_id": _ballot_id(ballot.consultation_id, ballot.respondent_key),
        "consultation_id": ballot.consultation_id,
        "respondent_key": ballot.respondent_key,
        "response_id": ballot.response_id,
        "received_at": ballot.received_at,
        "profile": ballot.profile.value,
        "open": [{"dataset_id": d, "priority": p.value} for d, p in ballot.open],
        "improve": [{"dataset_id": d, "kinds": [k.value for k in kinds]} for d, kinds in ballot.improve],
        "suggestions": [{"group_key": g, "dataset_id": m} for g, m in ballot.suggestions],
        "titles": [{"key": k, "title": t} for k, t in ballot.titles],
        "seen": sorted(ballot.seen),
        "version": ballot.version,
        "withdrawn": ballot.withdrawn,
    }


def ballot_from_document(doc: Document) -> Ballot:
    return Ballot(
        consultation_id=doc["consultation_id"],
        respondent_key=doc["respondent_key"],
        response_id=doc["response_id"],
        received_at=doc["received_at"],
        profile=Profile(doc["profile"]),
        open=tuple((o["dataset_id"], Priority(o["priority"])) for o in doc["open"]),
        improve=tuple((i["dataset_id"], tuple(ImprovementKind(k) for k in i["kinds"])) for i in doc["improve"]),
        suggestions=tuple((s["group_key"], s["dataset_id"]) for s in doc["suggestions"]),
        titles=tuple((t["key"], t["title"]) for t in doc["titles"]),
        seen=frozenset(doc["seen"]),
        version=doc["version"],
        withdrawn=doc.get("withdrawn", False),
    )


def _flatten(counts: Mapping[str, Any], prefix: TallyField = ()) -> dict[TallyField, int]:
    flat: dict[TallyField, int] = {}
    for name, value in counts.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, (*prefix, name))
        else:
            flat[(*prefix, name)] = int(value)
    return flat


class MongoScoringRepository:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._client = client
        db = client[database]
        self._ballots = db["ballots"]
        self._rows = db["ranking_rows"]
        self._totals = db["consultation_totals"]

    async def ensure_indexes(self) -> None:
        await self._rows.create_index([("consultation_id", ASCENDING), ("kind", ASCENDING)])
        await self._ballots.create_index([("consultation_id", ASCENDING)])

    async def ballots(self, consultation_id: str) -> AsyncIterator[Ballot]:
        """Every ballot of a consultation, in `_id` order, streamed in batches."""
        cursor = self._ballots.find({"consultation_id": consultation_id}, batch_size=2000).sort("_id", ASCENDING)
        async for doc in cursor:
            yield ballot_from_document(doc)

    async def load_ballots(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Ballot]:
        ids = [_ballot_id(*key) for key in keys]
        ballots = {}
        async for doc in self._ballots.find({"_id": {"$in": ids}}):
            ballot = ballot_from_document(doc)
            ballots[(ballot.consultation_id, ballot.respondent_key)] = ballot
        return ballots

    async def apply(self, plan: BatchPlan) -> None:
        if not plan.ballots:
            return
        # Bounded: a transaction blocked (by one a killed replica left open, say) fails after this
        # long, and the batch is redelivered, instead of holding the consumer indefinitely.
        with pymongo.timeout(TRANSACTION_TIMEOUT_S):
            async with self._client.start_session() as session:
                await session.with_transaction(lambda s: self._write(plan, s))

    async def _write(self, plan: BatchPlan, session: AsyncClientSession) -> None:
        ballot_ops: list[InsertOne[Document] | ReplaceOne[Document]] = []
        replaces = 0
        for old, new in plan.ballots:
            doc = ballot_to_document(new) | {"version": new.version + 1}
            if old is None:
                ballot_ops.append(InsertOne(doc))
            else:
                replaces += 1
                ballot_ops.append(ReplaceOne({"_id": doc["_id"], "version": old.version}, doc))
        try:
            result = await self._ballots.bulk_write(ballot_ops, ordered=True, session=session)
        except BulkWriteError as error:
            if any(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise BallotConflict("a ballot was inserted concurrently") from error
            raise
        if result.matched_count != replaces:
            raise BallotConflict("a ballot changed since it was read")
        row_ops = []
        for row_id, change in plan.rows.items():
            update: Document = {
                "$inc": {"counts." + ".".join(name): n for name, n in change.counts.items() if n},
                "$setOnInsert": {
                    "consultation_id": row_id.consultation_id,
                    "kind": row_id.kind.value,
                    "key": row_id.key,
                    "dataset_id": change.dataset_id,
                },
            }
            if change.title is not None:
                update["$set"] = {"title": change.title}
            row_ops.append(UpdateOne({"_id": _row_id(row_id)}, update, upsert=True))
        if row_ops:
            await self._rows.bulk_write(row_ops, ordered=False, session=session)
        total_ops = [
            UpdateOne(
                {"_id": consultation_id},
                {
                    "$inc": {"respondents": change.respondents, "responses": change.responses, "revision": 1},
                    "$max": {"as_of": change.as_of},
                },
                upsert=True,
            )
            for consultation_id, change in plan.consultations.items()
        ]
        await self._totals.bulk_write(total_ops, ordered=False, session=session)

    async def rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        rows = []
        async for doc in self._rows.find(
            {"consultation_id": consultation_id, "kind": kind.value, "counts.respondents": {"$gt": 0}}
        ):
            rows.append(
                StoredRow(
                    key=doc["key"],
                    dataset_id=doc.get("dataset_id"),
                    title=doc.get("title"),
                    counts=_flatten(doc.get("counts", {})),
                )
            )
        return rows

    async def totals(self, consultation_id: str) -> Totals:
        doc = await self._totals.find_one({"_id": consultation_id})
        if doc is None:
            return Totals()
        return Totals(doc.get("respondents", 0), doc.get("responses", 0), doc.get("as_of"), doc.get("revision", 0))

"""Where scoring keeps ballots and ranking tallies: a Protocol and its MongoDB implementation.

Exactly-once counting rests on one transaction per batch: the replaced ballots (each carrying the
ids of every submission it has seen) and the tally increments they imply are committed together,
and the Kafka offsets only after. A redelivered batch then finds its submissions already in the
ballots' `seen` sets and changes nothing. Ballot writes are conditional on the version read, so two
replicas racing on one respondent (during a rebalance) cannot both apply a change: the loser
aborts, re-reads and re-plans.

Staff's exclusions are applied the same way, one transaction per batch of decisions: the clusters'
latest decisions (each with its offset, so a redelivered or older one changes nothing), each
respondent set aside with the cluster they are attributed to, the excluded tallies and the
consultation's counts. A batch of responses and a batch of decisions on the same consultation must
not both plan on what the other is changing: each guards its write to the consultation's totals
document with what it read there, `exclusions` (the count of decision batches applied) for the
responses, `revision` (every change) for the decisions; the loser finds the guard moved, aborts,
re-reads and re-plans.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pymongo
from pymongo import ASCENDING, AsyncMongoClient, DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.scoring.domain import (
    Ballot,
    BatchPlan,
    Cluster,
    ExclusionPlan,
    RowChange,
    RowId,
    StoredRow,
    TallyField,
)
from shared.contracts import Decision, ExclusionDecided, ImprovementKind, Priority, Profile, RankingKind

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
    excluded_respondents: int = 0  # counted respondents set aside
    excluded_clusters: int = 0  # clusters whose latest decision is exclude
    exclusions: int = 0  # batches of decisions applied: what a batch of responses guards on


class ScoringRepository(Protocol):
    async def load_ballots(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Ballot]: ...

    async def exclusion_guards(self, consultation_ids: Iterable[str]) -> dict[str, int]: ...

    async def load_attribution(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]: ...

    async def apply(self, plan: BatchPlan, guards: Mapping[str, int]) -> None: ...

    async def load_clusters(self, consultation_ids: Iterable[str]) -> dict[tuple[str, str], Cluster]: ...

    async def attribution(self, consultation_id: str) -> dict[str, str]: ...

    async def apply_exclusions(self, plan: ExclusionPlan, revisions: Mapping[str, int]) -> None: ...

    async def rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]: ...

    async def excluded_rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]: ...

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


def cluster_to_document(cluster: Cluster) -> Document:
    return {
        "_id": _ballot_id(cluster.consultation_id, cluster.cluster_id),
        "consultation_id": cluster.consultation_id,
        "cluster_id": cluster.cluster_id,
        "decision": cluster.decision.value,
        "respondent_keys": sorted(cluster.respondent_keys),
        "position": cluster.position,
        "decided": cluster.decided.model_dump(mode="json") if cluster.decided else None,
    }


def cluster_from_document(doc: Document) -> Cluster:
    return Cluster(
        consultation_id=doc["consultation_id"],
        cluster_id=doc["cluster_id"],
        decision=Decision(doc["decision"]),
        respondent_keys=frozenset(doc["respondent_keys"]),
        position=doc["position"],
        decided=ExclusionDecided.model_validate(doc["decided"]) if doc.get("decided") else None,
    )


def _guard(name: str, value: int) -> Document:
    """A filter matching the totals document when `name` still has the value read (absent is 0)."""
    return {name: {"$in": [0, None]}} if value == 0 else {name: value}


def _row_updates(rows: Mapping[RowId, RowChange]) -> list[UpdateOne]:
    ops = []
    for row_id, change in rows.items():
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
        if update["$inc"]:
            ops.append(UpdateOne({"_id": _row_id(row_id)}, update, upsert=True))
    return ops


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
        self._excluded_rows = db["excluded_rows"]
        self._clusters = db["exclusion_clusters"]
        self._excluded = db["excluded_respondents"]

    async def ensure_indexes(self) -> None:
        await self._rows.create_index([("consultation_id", ASCENDING), ("kind", ASCENDING)])
        await self._excluded_rows.create_index([("consultation_id", ASCENDING), ("kind", ASCENDING)])
        await self._ballots.create_index([("consultation_id", ASCENDING)])
        await self._clusters.create_index([("consultation_id", ASCENDING)])
        await self._excluded.create_index([("consultation_id", ASCENDING)])

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

    async def exclusion_guards(self, consultation_ids: Iterable[str]) -> dict[str, int]:
        """For each consultation, how many batches of decisions were applied to it (0: none ever)."""
        ids = sorted(set(consultation_ids))
        guards = dict.fromkeys(ids, 0)
        async for doc in self._totals.find({"_id": {"$in": ids}}, {"exclusions": 1}):
            guards[doc["_id"]] = doc.get("exclusions", 0)
        return guards

    async def load_attribution(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The respondents among `keys` set aside, with the cluster each is attributed to."""
        ids = [_ballot_id(*key) for key in keys]
        attributed = {}
        for chunk in range(0, len(ids), 5000):
            async for doc in self._excluded.find({"_id": {"$in": ids[chunk : chunk + 5000]}}):
                attributed[(doc["consultation_id"], doc["respondent_key"])] = doc["cluster_id"]
        return attributed

    async def attribution(self, consultation_id: str) -> dict[str, str]:
        """Every respondent of a consultation set aside, with the cluster each is attributed to."""
        return {
            doc["respondent_key"]: doc["cluster_id"]
            async for doc in self._excluded.find({"consultation_id": consultation_id})
        }

    async def load_clusters(self, consultation_ids: Iterable[str]) -> dict[tuple[str, str], Cluster]:
        clusters = {}
        async for doc in self._clusters.find({"consultation_id": {"$in": sorted(set(consultation_ids))}}):
            cluster = cluster_from_document(doc)
            clusters[cluster.key] = cluster
        return clusters

    async def apply(self, plan: BatchPlan, guards: Mapping[str, int]) -> None:
        if not plan.ballots:
            return
        await self._transaction(lambda s: self._write(plan, guards, s))

    async def apply_exclusions(self, plan: ExclusionPlan, revisions: Mapping[str, int]) -> None:
        if plan.is_empty:
            return
        await self._transaction(lambda s: self._write_exclusions(plan, revisions, s))

    async def _transaction(self, write: Callable[[AsyncClientSession], Awaitable[None]]) -> None:
        # Bounded: a transaction blocked (by one a killed replica left open, say) fails after this
        # long, and the batch is redelivered, instead of holding the consumer indefinitely.
        with pymongo.timeout(TRANSACTION_TIMEOUT_S):
            async with self._client.start_session() as session:
                await session.with_transaction(write)

    async def _write_totals(self, ops: list[UpdateOne], session: AsyncClientSession) -> None:
        """Write guarded updates of consultation totals; a guard that moved is a conflict."""
        try:
            result = await self._totals.bulk_write(ops, ordered=True, session=session)
        except BulkWriteError as error:
            if any(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise BallotConflict("a consultation's exclusions changed since they were read") from error
            raise
        if result.matched_count + result.upserted_count != len(ops):
            raise BallotConflict("a consultation's exclusions changed since they were read")

    async def _write_exclusions(
        self, plan: ExclusionPlan, revisions: Mapping[str, int], session: AsyncClientSession
    ) -> None:
        await self._write_totals(
            [
                UpdateOne(
                    {"_id": consultation_id} | _guard("revision", revisions.get(consultation_id, 0)),
                    {
                        "$inc": {
                            "revision": 1,
                            "exclusions": 1,
                            "excluded_respondents": plan.excluded_respondents.get(consultation_id, 0),
                        },
                        "$set": {"excluded_clusters": plan.excluded_clusters.get(consultation_id, 0)},
                    },
                    upsert=True,
                )
                for consultation_id in sorted(plan.consultations)
            ],
            session,
        )
        await self._clusters.bulk_write(
            [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in map(cluster_to_document, plan.clusters)],
            ordered=False,
            session=session,
        )
        respondent_ops: list[DeleteOne | ReplaceOne[Document]] = []
        for (consultation_id, respondent_key), cluster_id in plan.respondents.items():
            _id = _ballot_id(consultation_id, respondent_key)
            if cluster_id is None:
                respondent_ops.append(DeleteOne({"_id": _id}))
            else:
                doc = {
                    "_id": _id,
                    "consultation_id": consultation_id,
                    "respondent_key": respondent_key,
                    "cluster_id": cluster_id,
                }
                respondent_ops.append(ReplaceOne({"_id": _id}, doc, upsert=True))
        if respondent_ops:
            await self._excluded.bulk_write(respondent_ops, ordered=False, session=session)
        if row_ops := _row_updates(plan.excluded_rows):
            await self._excluded_rows.bulk_write(row_ops, ordered=False, session=session)

    async def _write(self, plan: BatchPlan, guards: Mapping[str, int], session: AsyncClientSession) -> None:
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
            # Unordered: the inserts and the replaces go as two commands, not one per alternation.
            result = await self._ballots.bulk_write(ballot_ops, ordered=False, session=session)
        except BulkWriteError as error:
            if any(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise BallotConflict("a ballot was inserted concurrently") from error
            raise
        if result.matched_count != replaces:
            raise BallotConflict("a ballot changed since it was read")
        if row_ops := _row_updates(plan.rows):
            await self._rows.bulk_write(row_ops, ordered=False, session=session)
        if excluded_ops := _row_updates(plan.excluded_rows):
            await self._excluded_rows.bulk_write(excluded_ops, ordered=False, session=session)
        await self._write_totals(
            [
                UpdateOne(
                    {"_id": consultation_id} | _guard("exclusions", guards.get(consultation_id, 0)),
                    {
                        "$inc": {
                            "respondents": change.respondents,
                            "responses": change.responses,
                            "excluded_respondents": change.excluded_respondents,
                            "revision": 1,
                        },
                        "$max": {"as_of": change.as_of},
                    },
                    upsert=True,
                )
                for consultation_id, change in sorted(plan.consultations.items())
            ],
            session,
        )

    async def rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        return await self._stored_rows(self._rows, consultation_id, kind)

    async def excluded_rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        """The contributions of the ballots of the respondents set aside."""
        return await self._stored_rows(self._excluded_rows, consultation_id, kind)

    @staticmethod
    async def _stored_rows(
        collection: AsyncCollection[Document], consultation_id: str, kind: RankingKind
    ) -> list[StoredRow]:
        rows = []
        async for doc in collection.find(
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
        return Totals(
            respondents=doc.get("respondents", 0),
            responses=doc.get("responses", 0),
            as_of=doc.get("as_of"),
            revision=doc.get("revision", 0),
            excluded_respondents=doc.get("excluded_respondents", 0),
            excluded_clusters=doc.get("excluded_clusters", 0),
            exclusions=doc.get("exclusions", 0),
        )

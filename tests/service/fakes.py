"""In-memory fakes of the services' ports, and helpers to drive their Kafka routers without a broker.

Each fake keeps its state in plain attributes the tests assert on; failures and races are planted
through attributes too (`fail`, `failures`, `interleave`), never by patching."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from services.ingest.outbox import Unavailable
from services.ingest.repository import Document, StoredAnswer
from services.scoring.domain import Ballot, BatchPlan, Cluster, ExclusionPlan, RowChange, RowId, StoredRow, plan_batch
from services.scoring.repository import BallotConflict, Totals
from shared.contracts import RankingKind, ResponseEnriched, ResponseForm, ResponseSubmitted

Key = tuple[str, str]
Model = TypeVar("Model", bound=BaseModel)


class RecordingPublisher:
    """The `EventPublisher` port: every event published, by topic, in order."""

    def __init__(self) -> None:
        self.published: dict[str, list[tuple[str | None, BaseModel]]] = {}

    async def publish(self, topic: str, events: Sequence[tuple[str | None, BaseModel]]) -> None:
        self.published.setdefault(topic, []).extend(events)

    def events(self, topic: str, kind: type[Model]) -> list[Model]:
        """The events published on `topic`, each checked to be a `kind`."""
        events = [event for _, event in self.published.get(topic, [])]
        assert all(isinstance(e, kind) for e in events), events
        return cast(list[Model], events)


# --- ingest -------------------------------------------------------------------------------------


class FakeProduce:
    """Ingest's producer: what Kafka committed; with `fail` set, it commits nothing and says so; with
    `fail_after_commit` set, it commits and then fails as a commit requested but not confirmed in time."""

    def __init__(self) -> None:
        self.committed: list[tuple[str, str, BaseModel]] = []
        self.deadlines: list[float | None] = []
        self.fail = False
        self.fail_after_commit = False

    async def __call__(self, topic: str, key: str, event: Any, deadline: float | None = None) -> None:
        self.deadlines.append(deadline)
        if self.fail:
            raise Unavailable("Kafka did not acknowledge in time")
        self.committed.append((topic, key, event))
        if self.fail_after_commit:
            raise Unavailable("commit requested, not confirmed in time", may_be_recorded=True)

    def events(self) -> list[ResponseSubmitted]:
        return [event for _, _, event in self.committed if isinstance(event, ResponseSubmitted)]


class InMemoryRespondentStore:
    """With `slow` set, a read waits until that event is set (a store that stopped answering)."""

    def __init__(self) -> None:
        self.answers: dict[Key, dict[str, StoredAnswer]] = {}
        self.forms: dict[Key, dict[str, Any]] = {}
        self.fail = False
        self.slow: asyncio.Event | None = None

    async def previous_answer(self, consultation_id: str, respondent_key: str, response_id: str) -> StoredAnswer | None:
        if self.slow is not None:
            await self.slow.wait()
        return self.answers.get((consultation_id, respondent_key), {}).get(response_id)

    async def record(self, event: ResponseSubmitted, form: ResponseForm, body_digest: str) -> None:
        if self.fail:
            raise ConnectionError("MongoDB unreachable")
        key = (event.consultation_id, event.respondent_key)
        self.answers.setdefault(key, {})[event.response_id] = StoredAnswer(event.received_at, body_digest)
        self.forms[key] = form.model_dump(mode="json", exclude={"respondent": {"token", "email"}})

    async def latest_form(self, consultation_id: str, respondent_key: str) -> dict[str, Any] | None:
        return self.forms.get((consultation_id, respondent_key))

    async def forget(self, consultation_id: str, respondent_key: str) -> None:
        self.forms.pop((consultation_id, respondent_key), None)


class InMemoryEmailIdentity:
    def __init__(self) -> None:
        self.nonces: dict[Key, bytes] = {}
        self.pending: dict[str, Document] = {}
        self.mailed_ids: set[str] = set()

    async def nonce(self, consultation_id: str, email_hash: str) -> bytes | None:
        return self.nonces.get((consultation_id, email_hash))

    async def remember(self, consultation_id: str, email_hash: str, nonce: bytes) -> None:
        self.nonces.setdefault((consultation_id, email_hash), nonce)

    async def hold(self, pending_id: str, held: Document) -> bool:
        """Whether the link for this held answer was already mailed."""
        self.pending.setdefault(pending_id, held)
        return pending_id in self.mailed_ids

    async def mailed(self, pending_id: str) -> None:
        self.mailed_ids.add(pending_id)

    async def held(self, pending_id: str) -> Document | None:
        return self.pending.get(pending_id)

    async def release(self, pending_id: str) -> None:
        self.pending.pop(pending_id, None)


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail = False

    async def send(self, to: str, subject: str, body: str) -> None:
        if self.fail:
            raise ConnectionRefusedError("SMTP server down")
        self.sent.append((to, subject, body))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- scoring ------------------------------------------------------------------------------------


class InMemoryScoringRepository:
    """The `ScoringRepository` port with the MongoDB implementation's guards: a ballot write is
    conditional on the version read, a batch of responses on the consultation's `exclusions`, a batch
    of decisions on its `revision`. `failures` makes the next writes fail as an unreachable server
    would; `interleave` has another writer fold these responses in just before the next write."""

    def __init__(self) -> None:
        self.stored: dict[Key, Ballot] = {}
        self.rows_by: dict[RowId, RowChange] = {}
        self.excluded_rows_by: dict[RowId, RowChange] = {}
        self.totals_by: dict[str, Totals] = {}
        self.clusters: dict[Key, Cluster] = {}
        self.attributed: dict[Key, str] = {}
        self.failures = 0
        self.interleave: list[ResponseEnriched] = []
        self.writes = 0

    async def load_ballots(self, keys: Iterable[Key]) -> dict[Key, Ballot]:
        return {key: self.stored[key] for key in keys if key in self.stored}

    async def exclusion_guards(self, consultation_ids: Iterable[str]) -> dict[str, int]:
        return {cid: self.totals_by.get(cid, Totals()).exclusions for cid in consultation_ids}

    async def load_attribution(self, keys: Iterable[Key]) -> dict[Key, str]:
        return {key: self.attributed[key] for key in keys if key in self.attributed}

    async def attribution(self, consultation_id: str) -> dict[str, str]:
        return {key: cluster for (cid, key), cluster in self.attributed.items() if cid == consultation_id}

    async def load_clusters(self, consultation_ids: Iterable[str]) -> dict[Key, Cluster]:
        wanted = set(consultation_ids)
        return {key: cluster for key, cluster in self.clusters.items() if key[0] in wanted}

    def _before_write(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("MongoDB unreachable")
        if self.interleave:
            other, self.interleave = self.interleave, []
            keys = {(e.response.consultation_id, e.response.respondent_key) for e in other}
            self._write(plan_batch(other, {k: self.stored[k] for k in keys if k in self.stored}))

    async def apply(self, plan: BatchPlan, guards: Mapping[str, int]) -> None:
        if not plan.ballots:
            return
        self._before_write()
        for old, new in plan.ballots:
            current = self.stored.get((new.consultation_id, new.respondent_key))
            if (current.version if current else None) != (old.version if old else None):
                raise BallotConflict("a ballot changed since it was read")
        if any(self.totals_by.get(cid, Totals()).exclusions != guards.get(cid, 0) for cid in plan.consultations):
            raise BallotConflict("a consultation's exclusions changed since they were read")
        self._write(plan)

    def _write(self, plan: BatchPlan) -> None:
        self.writes += 1
        for _, new in plan.ballots:
            self.stored[(new.consultation_id, new.respondent_key)] = replace(new, version=new.version + 1)
        _add(self.rows_by, plan.rows)
        _add(self.excluded_rows_by, plan.excluded_rows)
        for cid, change in plan.consultations.items():
            totals = self.totals_by.get(cid, Totals())
            as_of = max(filter(None, [totals.as_of, change.as_of]), default=None)
            self.totals_by[cid] = replace(
                totals,
                respondents=totals.respondents + change.respondents,
                responses=totals.responses + change.responses,
                excluded_respondents=totals.excluded_respondents + change.excluded_respondents,
                revision=totals.revision + 1,
                as_of=as_of,
            )

    async def apply_exclusions(self, plan: ExclusionPlan, revisions: Mapping[str, int]) -> None:
        if plan.is_empty:
            return
        self._before_write()
        if any(self.totals_by.get(cid, Totals()).revision != revisions.get(cid, 0) for cid in plan.consultations):
            raise BallotConflict("the consultation changed since it was read")
        self.writes += 1
        for cid in plan.consultations:
            totals = self.totals_by.get(cid, Totals())
            self.totals_by[cid] = replace(
                totals,
                revision=totals.revision + 1,
                exclusions=totals.exclusions + 1,
                excluded_respondents=totals.excluded_respondents + plan.excluded_respondents.get(cid, 0),
                excluded_clusters=plan.excluded_clusters.get(cid, 0),
            )
        self.clusters |= {cluster.key: cluster for cluster in plan.clusters}
        for key, cluster_id in plan.respondents.items():
            if cluster_id is None:
                self.attributed.pop(key, None)
            else:
                self.attributed[key] = cluster_id
        _add(self.excluded_rows_by, plan.excluded_rows)

    async def rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        return _stored_rows(self.rows_by, consultation_id, kind)

    async def excluded_rows(self, consultation_id: str, kind: RankingKind) -> list[StoredRow]:
        return _stored_rows(self.excluded_rows_by, consultation_id, kind)

    async def totals(self, consultation_id: str) -> Totals:
        return self.totals_by.get(consultation_id, Totals())

    async def ballots(self, consultation_id: str) -> AsyncIterator[Ballot]:
        for key in sorted(self.stored):
            if key[0] == consultation_id:
                yield self.stored[key]


def _add(into: dict[RowId, RowChange], changes: Mapping[RowId, RowChange]) -> None:
    for row_id, change in changes.items():
        into.setdefault(row_id, RowChange()).add(change)


def _stored_rows(rows: Mapping[RowId, RowChange], consultation_id: str, kind: RankingKind) -> list[StoredRow]:
    return [
        StoredRow(row_id.key, change.dataset_id, change.title, Counter({n: v for n, v in change.counts.items() if v}))
        for row_id, change in sorted(rows.items(), key=lambda item: item[0].key)
        if row_id.consultation_id == consultation_id
        and row_id.kind is kind
        and change.counts.get(("respondents",), 0) > 0
    ]

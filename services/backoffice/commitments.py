"""The ministry's commitments and the excerpts staff approve: recorded as events on compacted topics
(the publisher publishes and follows them), read back from this service's own views of those topics."""

import asyncio
import logging
from collections.abc import Callable

from pydantic import BaseModel

from services.backoffice.domain import CommitmentDraft, opened_by_the_catalogue, record_commitment
from services.backoffice.repository import StaffRepository
from shared.catalogue_view import CatalogueView, in_force
from shared.contracts import (
    CommitmentRecorded,
    DatasetCatalogued,
    ExcerptApproved,
    ExcerptKind,
    utc_now,
)
from shared.kafka import EventPublisher, StateView
from shared.topics import COMMITMENTS, EXCERPTS


class NotRecorded(Exception):
    """Kafka did not take the event: nothing changed."""


class Commitments:
    def __init__(
        self,
        commitments: StateView[CommitmentRecorded],
        excerpts: StateView[ExcerptApproved],
        catalogue: CatalogueView,
        publisher: EventPublisher,
        staff: StaffRepository,
        on_action: Callable[[str], None],
        logger: logging.Logger,
    ) -> None:
        self._commitments = commitments
        self._excerpts = excerpts
        self._catalogue = catalogue
        self._publisher = publisher
        self._staff = staff
        self._on_action = on_action
        self._logger = logger
        self._pending: set[asyncio.Task[None]] = set()

    def of(self, consultation_id: str) -> list[CommitmentRecorded]:
        found = [c for c in self._commitments.items.values() if c.consultation_id == consultation_id]
        return sorted(found, key=lambda c: (c.kind.value, c.title.casefold(), c.commitment_id))

    def get(self, consultation_id: str, commitment_id: str) -> CommitmentRecorded | None:
        return self._commitments.get(f"{consultation_id}:{commitment_id}")

    def excerpts_of(self, consultation_id: str) -> list[ExcerptApproved]:
        found = [e for e in self._excerpts.items.values() if e.consultation_id == consultation_id and e.approved]
        return sorted(found, key=lambda e: (e.kind.value, e.title.casefold(), e.excerpt_id))

    def excerpt(self, consultation_id: str, excerpt_id: str) -> ExcerptApproved | None:
        return self._excerpts.get(f"{consultation_id}:{excerpt_id}")

    def service_of(self, dataset_id: str) -> str:
        """The service in charge of a dataset, as the census says, or its producer."""
        entry = self._catalogue.get(dataset_id)
        if entry is None:
            return ""
        dataset = entry.dataset
        return dataset.service or dataset.organisation or ""

    def title_of(self, dataset_id: str) -> str | None:
        entry = self._catalogue.get(dataset_id)
        return entry.dataset.title if entry else None

    async def record(self, draft: CommitmentDraft, who: str) -> CommitmentRecorded:
        """Record a commitment (refused with `CommitmentRefused`), then see at once whether the catalogue
        already shows it fulfilled."""
        previous = self.get(draft.consultation_id, draft.commitment_id)
        recorded = record_commitment(previous, draft, utc_now())
        await self._publish(recorded)
        action = "commitment.create" if previous is None else "commitment.update"
        await self._staff.audit(
            utc_now(), who, action, recorded.key, f"{recorded.kind}: {recorded.title} → {recorded.status}"
        )
        self._on_action(action)
        if recorded.dataset_id:
            entry = self._catalogue.entry(recorded.dataset_id)
            if entry is not None:
                await self._fulfil([recorded], entry)
        return self.get(draft.consultation_id, draft.commitment_id) or recorded

    async def approve(
        self,
        consultation_id: str,
        excerpt_id: str,
        kind: ExcerptKind,
        title: str,
        text: str,
        who: str,
        dataset_id: str | None = None,
        group_key: str | None = None,
    ) -> ExcerptApproved:
        now = utc_now()
        excerpt = ExcerptApproved(
            event_id=f"excerpt:{consultation_id}:{excerpt_id}:{now.isoformat()}",
            occurred_at=now,
            consultation_id=consultation_id,
            excerpt_id=excerpt_id,
            kind=kind,
            dataset_id=dataset_id,
            group_key=group_key,
            title=title,
            text=text,
            approved=True,
        )
        await self._send(EXCERPTS, excerpt.key, excerpt)
        self._excerpts.put(excerpt.key, excerpt)
        await self._staff.audit(now, who, "excerpt.approve", excerpt.key, text[:200])
        self._on_action("excerpt.approve")
        return excerpt

    async def withdraw(self, consultation_id: str, excerpt_id: str, who: str) -> None:
        held = self.excerpt(consultation_id, excerpt_id)
        if held is None or not held.approved:
            return
        now = utc_now()
        withdrawn = held.model_copy(
            update={"event_id": f"excerpt:{held.key}:{now.isoformat()}", "occurred_at": now, "approved": False}
        )
        await self._send(EXCERPTS, withdrawn.key, withdrawn)
        self._excerpts.put(withdrawn.key, withdrawn)
        await self._staff.audit(now, who, "excerpt.withdraw", held.key)
        self._on_action("excerpt.withdraw")

    def dataset_changed(self, dataset_id: str, entry: DatasetCatalogued | None) -> None:
        """Catalogue view callback: a dataset that opens fulfils the commitments to open it."""
        entry = in_force(entry)
        if entry is None:
            return
        waiting = [c for c in self._commitments.items.values() if c.dataset_id == dataset_id]
        if not waiting:
            return
        task = asyncio.get_running_loop().create_task(self._fulfil(waiting, entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _fulfil(self, commitments: list[CommitmentRecorded], entry: DatasetCatalogued) -> None:
        # The instant is the catalogue's, so replicas that both see the opening record the same event.
        for done in opened_by_the_catalogue(commitments, entry.dataset, entry.occurred_at):
            try:
                await self._publish(done)
            except Exception:
                self._logger.exception("commitment not marked done", extra={"commitment": done.key})
                continue
            await self._staff.audit(utc_now(), "catalogue", "commitment.done", done.key, done.done_url or "")
            self._on_action("commitment.done")

    async def _publish(self, commitment: CommitmentRecorded) -> None:
        await self._send(COMMITMENTS, commitment.key, commitment)
        self._commitments.put(commitment.key, commitment)

    async def _send(self, topic: str, key: str, event: BaseModel) -> None:
        try:
            await self._publisher.publish(topic, [(key, event)])
        except Exception as error:
            raise NotRecorded(f"{topic}: {type(error).__name__}") from error

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

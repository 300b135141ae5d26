"""Keeping the published files up to date with what the ministry committed to: each time a
commitment or an approved excerpt of a published consultation changes, its files are rendered again
from the frozen results, the public archive as stored and the new inputs, and stored under a new
manifest when (and only when) a byte changed.

The rankings are computed again from the stored public archive and method, as the audit does, so
every ranking and archive file keeps its bytes.
"""

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable

from services.publisher.archive import FollowUp, follow_up_of, published_results
from services.publisher.closing import PublisherMetrics
from services.publisher.files import (
    ANSWERS_CSV,
    METHOD_JSON,
    RESPONDENTS_CSV,
    Report,
    read_archive,
    read_method,
    render_files,
    respondents_csv,
    under_publication_rules,
)
from services.publisher.repository import ResultsRepository
from shared.contracts import CommitmentRecorded, ExcerptApproved, ResultsPublished
from shared.kafka import StateView
from shared.topics import COMMITMENTS, EXCERPTS

READ_BACK = (RESPONDENTS_CSV, ANSWERS_CSV, METHOD_JSON)


class ArchiveNotReadBack(Exception):
    """The stored archive does not render back to the same bytes: nothing is republished."""


class FollowUpInputs:
    """The ministry's inputs to the published files, followed on their topics: commitments and approved
    excerpts. A change of either is reported with the consultation it belongs to."""

    def __init__(
        self,
        bootstrap: str,
        consultations: Iterable[str],
        changed: Callable[[str], None],
        logger: logging.Logger,
    ) -> None:
        self._consultations = consultations
        self._changed = changed
        self.commitments = StateView(bootstrap, COMMITMENTS, CommitmentRecorded, logger, on_change=self._on_change)
        self.excerpts = StateView(bootstrap, EXCERPTS, ExcerptApproved, logger, on_change=self._on_change)

    def _on_change(self, key: str, _: object) -> None:
        # Keys are `<consultation_id>:<id>`; a tombstone carries no value to read the consultation from.
        for cid in self._consultations:
            if key.startswith(cid + ":"):
                self._changed(cid)

    def follow_up(self, results: ResultsPublished) -> FollowUp:
        """What the ministry will do about these results, and the excerpts approved, as recorded now."""
        return follow_up_of(results, self.commitments.items.values(), self.excerpts.items.values())


class Republisher:
    def __init__(
        self,
        repository: ResultsRepository,
        follow_up: Callable[[ResultsPublished], FollowUp],
        report: Report,
        metrics: PublisherMetrics,
        logger: logging.Logger,
        retry_s: float = 1.0,
    ) -> None:
        self._repository = repository
        self._follow_up = follow_up
        self._report = report
        self._metrics = metrics
        self._logger = logger
        self._retry_s = retry_s
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()

    def changed(self, consultation_id: str) -> None:
        """A commitment or an excerpt of this consultation changed (or its files were just stored)."""
        self._dirty.add(consultation_id)
        self._wake.set()

    def catch_up(self, consultation_ids: Iterable[str]) -> None:
        """Mark every consultation changed: whatever changed while no publisher ran (and files stored by an
        earlier version) is caught up."""
        for cid in list(consultation_ids):
            self.changed(cid)

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._dirty)

    async def run_forever(self) -> None:
        while True:
            await self._wake.wait()
            await self.run_once()
            if self._dirty:  # some failed: try again, without spinning
                await asyncio.sleep(self._retry_s)
                self._wake.set()

    async def run_once(self) -> None:
        """Republish every consultation marked changed; those that fail stay marked."""
        self._wake.clear()
        todo, self._dirty = sorted(self._dirty), set()
        for cid in todo:
            try:
                await self.republish(cid)
            except Exception:
                self._dirty.add(cid)
                self._logger.exception("files not republished; retrying", extra={"consultation_id": cid})

    async def republish(self, consultation_id: str) -> bool:
        """Render the files of a published consultation again; store them if any byte changed."""
        found = await self._repository.get(consultation_id)
        if found is None or any(name not in found.files for name in READ_BACK):
            return False  # not published yet: the close renders the files with the inputs of its time
        stored = {name: await self._repository.file(consultation_id, found.files[name]) for name in READ_BACK}
        if not under_publication_rules(stored[METHOD_JSON]):
            return False  # rendered by an earlier version: the closer renders them again, from the ballots
        archive = await asyncio.to_thread(read_archive, stored[RESPONDENTS_CSV], stored[ANSWERS_CSV])
        _, _, method = read_method(stored[METHOD_JSON])
        # A large archive takes seconds to rank and render: not on the event loop.
        public = await asyncio.to_thread(published_results, found.results, archive, method)
        follow_up = self._follow_up(public)
        files = await asyncio.to_thread(render_files, public, archive, method, self._report, follow_up)
        # Files stored before exclusions existed have no exclusion column: they render back in their own form,
        # and are stored again in the new one (nobody set aside).
        with_exclusion = stored[RESPONDENTS_CSV].split(b"\r\n", 1)[0].endswith(b",exclusion")
        again = {
            RESPONDENTS_CSV: files[RESPONDENTS_CSV] if with_exclusion else respondents_csv(archive, with_exclusion),
            ANSWERS_CSV: files[ANSWERS_CSV],
        }
        if any(again[name] != stored[name] for name in (RESPONDENTS_CSV, ANSWERS_CSV)):
            raise ArchiveNotReadBack(f"{consultation_id}: the stored archive does not render back identically")
        hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        if hashes == {name: f.sha256 for name, f in found.files.items()}:
            return False
        await self._repository.save(found.results, files)
        self._metrics.republished.inc()
        self._logger.info(
            "files republished",
            extra={
                "consultation_id": consultation_id,
                "commitments": len(follow_up.engagements),
                "excerpts": len(follow_up.excerpts),
            },
        )
        return True

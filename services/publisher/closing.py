"""Closing a consultation: wait for the watermark, freeze the rankings, emit the results once,
write the open-data files.

The frozen rankings are the filtered ones: computed from the internal archive (every respondent's
counted submission, which the publisher's `Ledger` folds from the log as the responses arrive, once it
and scoring have read everything up to the watermark, every decision of staff on a flagged cluster
included) without the respondents set aside, with the published method, and checked against scoring's
own filtered tallies, which scoring sends over Kafka in reply to a request carrying the watermark, once
its consumer group has committed up to it (see `tallies`; the services talk only through Kafka): two
independent computations that must agree, in full detail, before anything is emitted; the clusters
scoring says it set aside must count the respondents the ballots mark with them. The files are rendered
from the public archive derived from the same ballots (see `archive`; it keeps everyone, each marked
with their exclusion), whose rankings must count what the frozen ones do; the frozen results are stored
with them, for staff.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.publisher.archive import (
    Consultation,
    Counted,
    DatasetRef,
    FollowUp,
    Method,
    Respondent,
    archive_of,
    compute_rankings,
    counted,
    disagreements,
    exclusion_problems,
    public_archive_of,
    published_results,
    results_of,
    same_totals,
)
from services.publisher.domain import Offsets, caught_up, is_due, results_event_id
from services.publisher.files import METHOD_JSON, Report, render_files, under_publication_rules
from services.publisher.repository import ResultsRepository
from shared.contracts import (
    ConsultationDefined,
    CountedBallot,
    DatasetRecord,
    ExclusionInForce,
    RankingKind,
    RankingPage,
    RankingView,
    ResultsPublished,
    utc_now,
)
from shared.topics import CATALOGUE_GROUP, EXCLUSIONS, RESPONSES_ENRICHED, RESPONSES_SUBMITTED, SCORING_GROUP

MAX_RETRY_S = 60.0
# Every response enriched and scored, and every decision of staff on a flagged cluster applied by scoring.
PIPELINE = ((RESPONSES_SUBMITTED, CATALOGUE_GROUP), (RESPONSES_ENRICHED, SCORING_GROUP), (EXCLUSIONS, SCORING_GROUP))


class Progress(Protocol):
    async def end_offsets(self, topic: str) -> Offsets: ...

    async def committed(self, group: str, topic: str) -> Offsets: ...


class Emitter(Protocol):
    async def emit_once(self, results: ResultsPublished) -> tuple[ResultsPublished, bool]: ...


class Rankings(Protocol):
    async def pages(self, consultation_id: str, watermark: Offsets) -> Mapping[RankingKind, RankingPage]:
        """Every ranking whole, filtered (without the respondents set aside), as scoring tallied it once its
        consumer group had committed up to `watermark`."""
        ...


class Archive(Protocol):
    def positions(self, topic: str) -> Offsets:
        """How far the archive has read each partition of `topic`."""
        ...

    async def ballots(self, consultation_id: str) -> Sequence[CountedBallot | Counted]: ...

    async def exclusions(self, consultation_id: str) -> list[ExclusionInForce]:
        """The clusters set aside, by cluster id."""
        ...


class ResultsDisagree(Exception):
    """The rankings recomputed from the archive differ from scoring's tallies: nothing is published."""


class PublisherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "publisher_results_published_total",
            "Results messages emitted by this process.",
            registry=registry,
        )
        self.close_seconds = Histogram(
            "publisher_close_to_results_seconds",
            "From closes_at to results stored.",
            buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=registry,
        )
        self.watermark_seconds = Histogram(
            "publisher_watermark_wait_seconds",
            "Time waiting for the pipeline to score everything.",
            registry=registry,
        )
        self.in_progress = Gauge(
            "publisher_publications_in_progress",
            "Consultations this process is publishing now.",
            registry=registry,
        )
        self.unpublished_age = Gauge(
            "publisher_unpublished_close_age_seconds",
            "Age of the oldest close whose results are not published yet (0: none).",
            registry=registry,
        )
        self.lag = Gauge(
            "publisher_consumer_lag_messages",
            "Messages a consumer group has yet to commit on a topic, as the publisher last measured.",
            ["group", "topic"],
            registry=registry,
        )
        self.republished = Counter(
            "publisher_files_republished_total",
            "Times the files of a published consultation were stored again, its commitments or excerpts changed.",
            registry=registry,
        )
        self.disagreements = Counter(
            "publisher_disagreements_total",
            "Publications refused because the archive and scoring's tallies (or clusters set aside) disagree.",
            registry=registry,
        )


@dataclass(frozen=True)
class Publishing:
    """What the results are published with, beside the weights scoring serves."""

    code_version: str
    min_cell: int
    resamples: int


def freeze(
    window: Consultation,
    ballots: Sequence[CountedBallot | Counted],
    exclusions: Sequence[ExclusionInForce],
    pages: Mapping[RankingKind, RankingPage],
    dataset: Callable[[str], DatasetRef | None],
    publishing: Publishing,
) -> tuple[ResultsPublished, list[Respondent], Method]:
    """The results frozen at the close from the archive's ballots, the public archive and the method,
    once checked against scoring's tallies (`pages`) and the public archive; `ResultsDisagree` otherwise."""
    cid = window.consultation_id
    everyone = archive_of(ballots)
    archive = counted(everyone, exclusions)
    weights = pages[RankingKind.OPEN].method.weights
    method = Method(weights, publishing.code_version, publishing.min_cell, publishing.resamples)
    referenced = {a.dataset_id for r in archive for a in r.answers if a.dataset_id}
    datasets = {d: ref for d in sorted(referenced) if (ref := dataset(d)) is not None}
    rankings = compute_rankings(archive, datasets, method.weights)
    excluded = len(everyone) - len(archive)
    problems = disagreements(rankings, {kind: page.items for kind, page in pages.items()})
    problems += exclusion_problems(everyone, exclusions)
    problems += [
        f"{kind.value}: scoring served the {page.view.value} view with {page.excluded_respondents} "
        f"respondents set aside, not the filtered one with {excluded}"
        for kind, page in pages.items()
        if (page.view, page.excluded_respondents) != (RankingView.FILTERED, excluded)
    ]
    if problems:
        raise ResultsDisagree(f"{cid}: archive and scoring disagree: {'; '.join(problems)}")
    candidate = results_of(results_event_id(cid), window, len(archive), method, rankings, excluded, exclusions)
    public_archive = public_archive_of(ballots, cid, publishing.min_cell)
    if problems := same_totals(candidate, published_results(candidate, public_archive, method)):
        raise ResultsDisagree(f"{cid}: public archive and frozen results disagree: {'; '.join(problems)}")
    return candidate, public_archive, method


def dataset_refs(dataset: Callable[[str], DatasetRecord | None]) -> Callable[[str], DatasetRef | None]:
    """The catalogue in force (retired datasets left out) as the results show its datasets."""

    def ref(dataset_id: str) -> DatasetRef | None:
        record = dataset(dataset_id)
        return None if record is None else DatasetRef(dataset_id, record.title, record.status)

    return ref


class Closer:
    def __init__(
        self,
        consultations: Mapping[str, ConsultationDefined],
        progress: Progress,
        rankings: Rankings,
        archive: Archive,
        emitter: Emitter,
        repository: ResultsRepository,
        datasets: Callable[[str], DatasetRef | None],
        code_version: str,
        report: Report,
        settle: timedelta,
        poll_interval_s: float,
        metrics: PublisherMetrics,
        logger: logging.Logger,
        follow_up: Callable[[ResultsPublished], FollowUp] = lambda _: FollowUp(),
        stored: Callable[[str], None] = lambda _: None,
        min_cell: int = 5,
        resamples: int = 1000,
    ) -> None:
        self._settings = Publishing(code_version, min_cell, resamples)
        self._consultations = consultations
        self._progress = progress
        self._rankings = rankings
        self._archive = archive
        self._emitter = emitter
        self._repository = repository
        self._datasets = datasets
        self._report = report
        self._settle = settle
        self._poll = poll_interval_s
        self._metrics = metrics
        self._logger = logger
        self._follow_up = follow_up
        self._stored = stored
        self._published: set[str] = set()
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                self._logger.exception("closing round failed; retrying")
            await asyncio.sleep(self._poll)

    async def tick(self) -> None:
        now = utc_now()
        due = [
            c
            for c in self._consultations.values()
            if c.consultation_id not in self._published and is_due(c, now, self._settle)
        ]
        oldest = min((c.closes_at for c in due), default=None)
        self._metrics.unpublished_age.set((now - oldest).total_seconds() if oldest else 0)
        for consultation in due:
            cid = consultation.consultation_id
            if time.monotonic() < self._retry_at.get(cid, 0.0):
                continue
            try:
                if not await self.is_published(cid):
                    await self.close(consultation)
            except Exception:
                # Back off: a publication reads every ballot; a persistent failure must not do so every second.
                self._failures[cid] = self._failures.get(cid, 0) + 1
                self._retry_at[cid] = time.monotonic() + min(MAX_RETRY_S, self._poll * 2 ** self._failures[cid])
                raise
            self._published.add(cid)

    async def is_published(self, consultation_id: str) -> bool:
        """Its files are stored, rendered under the publication rules. Files an earlier version stored
        without them are rendered again by `close`, which finds the results already emitted."""
        found = await self._repository.get(consultation_id)
        if found is None:
            return False
        stored = found.files.get(METHOD_JSON)
        return stored is not None and under_publication_rules(await self._repository.file(consultation_id, stored))

    async def measure_lag(self) -> None:
        """Consumer lag of the pipeline's groups, for the dashboard and the alerts."""
        for topic, group in PIPELINE:
            end = await self._progress.end_offsets(topic)
            committed = await self._progress.committed(group, topic)
            lag = sum(max(0, offset - committed.get(partition, 0)) for partition, offset in end.items())
            self._metrics.lag.labels(group, topic).set(lag)

    async def measure_lag_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.measure_lag()
            except Exception:
                self._logger.exception("measuring consumer lag failed; retrying")
            await asyncio.sleep(interval_s)

    async def wait_until_scored(self) -> Offsets:
        """Every response in Kafka now has been enriched, every enriched one scored and folded into the
        archive, and every decision on a flagged cluster applied by both (an empty topic has nothing to
        wait for). Returns the watermark of scoring's topics."""
        watermark: dict[tuple[str, int], int] = {}
        for topic, group in PIPELINE:
            end = await self._progress.end_offsets(topic)
            if group == SCORING_GROUP:
                watermark |= end
            # Polling another system's progress: there is no event to wait on.
            while True:
                if caught_up(end, await self._progress.committed(group, topic)):
                    break
                await asyncio.sleep(0.1)
            # What scoring has read, the archive must have folded too.
            while group == SCORING_GROUP:
                if caught_up(end, self._archive.positions(topic)):
                    break
                await asyncio.sleep(0.05)
        return watermark

    async def close(self, consultation: ConsultationDefined) -> ResultsPublished:
        cid = consultation.consultation_id
        with self._metrics.in_progress.track_inprogress():
            started = time.perf_counter()
            watermark = await self.wait_until_scored()
            laps = {"watermark_s": time.perf_counter() - started}
            frozen_at = utc_now()
            ballots = await self._archive.ballots(cid)  # on the loop: the follower's task changes the archive
            exclusions = sorted(await self._archive.exclusions(cid), key=lambda e: e.cluster_id)
            pages = await self._rankings.pages(cid, watermark)
            laps["tallies_s"] = time.perf_counter() - started - sum(laps.values())
            window = Consultation(cid, consultation.title, consultation.opens_at, consultation.closes_at, frozen_at)
            try:  # seconds for a large archive: not on the event loop
                candidate, public_archive, method = await asyncio.to_thread(
                    freeze, window, ballots, exclusions, pages, self._datasets, self._settings
                )
            except ResultsDisagree:
                self._metrics.disagreements.inc()
                raise
            laps["frozen_s"] = time.perf_counter() - started - sum(laps.values())
            # Whoever emitted first, the files are rendered from the results committed in Kafka,
            # so every replica and every restart writes the same bytes.
            results, emitted = await self._emitter.emit_once(candidate)
            laps["emit_s"] = time.perf_counter() - started - sum(laps.values())
            public = published_results(results, public_archive, method)
            # The bootstrap of a large archive takes seconds: not on the event loop.
            files = await asyncio.to_thread(
                render_files, public, public_archive, method, self._report, self._follow_up(public)
            )
            await self._repository.save(results, files)
            laps["files_s"] = time.perf_counter() - started - sum(laps.values())
        self._metrics.watermark_seconds.observe(laps["watermark_s"])
        # A commitment or excerpt that changed while the files were rendered is in them at the next rendering.
        self._stored(cid)
        if emitted:
            self._metrics.published.inc()
        self._metrics.close_seconds.observe((utc_now() - consultation.closes_at).total_seconds())
        self._logger.info(
            "results published" if emitted else "results already published; files written",
            extra={
                "consultation_id": cid,
                "respondents": results.respondents,
                "excluded_respondents": results.excluded_respondents,
            }
            | {name: round(seconds, 2) for name, seconds in laps.items()},
        )
        return results

"""A random stream of responses scored in memory, the results and files rendered from it, commitments,
clusters set aside, and the fakes of the closing flow: for the publisher's unit and integration tests."""

import csv
import hashlib
import io
import logging
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from services.publisher.archive import (
    Consultation,
    DatasetRef,
    FollowUp,
    Method,
    Respondent,
    archive_of,
    compute_rankings,
    public_archive_of,
    published_results,
    results_of,
)
from services.publisher.closing import Closer, PublisherMetrics
from services.publisher.domain import Offsets, results_event_id
from services.publisher.report import ReportRenderer
from services.publisher.repository import Publication, StoredFile
from services.scoring.domain import DEFAULT_WEIGHTS, counted_ballot, method, plan_batch, rank
from shared.contracts import (
    CommitmentKind,
    CommitmentRecorded,
    CommitmentStatus,
    ConsultationDefined,
    CountedBallot,
    DatasetStatus,
    DetectionSettings,
    ExclusionInForce,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    RankingMethod,
    RankingPage,
    RankingView,
    ResponseEnriched,
    ResultsPublished,
    Signal,
    StatusChange,
    SuggestionMatch,
    utc_now,
)
from tests.scoring_builders import T0, InMemoryRankings, enriched

DATASETS = {
    f"d{i}": DatasetRef(f"d{i}", f"Jeu {i}", DatasetStatus.OPEN if i % 2 else DatasetStatus.NOT_OPEN) for i in range(8)
}
TITLES = ["Fréquentation des musées", '=HYPERLINK("http://x")', "+33 tarifs", "'quoted", "Archives, « anciennes »"]


def random_stream(seed: int, respondents: int = 60, submissions: int = 150) -> list[ResponseEnriched]:
    rng = random.Random(seed)
    stream = []
    for n in range(submissions):
        opens = {d: rng.choice(list(Priority)) for d in rng.sample(sorted(DATASETS), rng.randrange(0, 4))}
        improves = {
            d: sorted(rng.sample(list(ImprovementKind), rng.randrange(1, 3)))
            for d in rng.sample(sorted(DATASETS), rng.randrange(0, 3))
        }
        message = enriched(
            f"r{n:04d}",
            f"p{rng.randrange(respondents)}",
            rng.uniform(0, 5 * 86400),
            opens=opens,
            improves=improves,
            profile=rng.choice(list(Profile)),
        )
        titles = rng.sample(TITLES, rng.randrange(0, 3))
        matches = [SuggestionMatch(group_key=f"title:{t.lower()[:3]}", title=t) for t in titles]
        if rng.random() < 0.2:
            matches.append(SuggestionMatch(group_key="d3", matched_dataset_id="d3", title="jeu 3 bis", match_score=95))
        stream.append(message.model_copy(update={"suggestions": matches}))
    return stream


def scored(stream: list[ResponseEnriched]) -> InMemoryRankings:
    store = InMemoryRankings()
    for start in range(0, len(stream), 17):
        store.apply(plan_batch(stream[start : start + 17], store.ballots))
    return store


def consultation() -> Consultation:
    return Consultation("c1", "Données culturelles", T0, T0 + timedelta(days=60), T0 + timedelta(days=60, seconds=7))


def frozen(seed: int, min_cell: int = 5) -> tuple:  # type: ignore[type-arg]
    """The results frozen at the close (from the internal archive), the ballots and the method."""
    ballots = [counted_ballot(b) for b in scored(random_stream(seed)).ballots.values()]
    archive = archive_of(ballots)
    method = Method(DEFAULT_WEIGHTS, "test-version", min_cell)
    rankings = compute_rankings(archive, DATASETS, method.weights)
    return results_of("event-1", consultation(), len(archive), method, rankings), ballots, method


def published(seed: int, min_cell: int = 5) -> tuple:  # type: ignore[type-arg]
    """What the close renders the files from: the published results, the public archive, the method, the report."""
    results, ballots, method = frozen(seed, min_cell)
    archive = public_archive_of(ballots, "c1", min_cell)
    return published_results(results, archive, method), archive, method, ReportRenderer()


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def commitment(
    commitment_id: str,
    kind: CommitmentKind,
    key: str,
    statuses: tuple[CommitmentStatus, ...] = (CommitmentStatus.PLANNED,),
    cid: str = "c1",
    title: str | None = None,
    **extra: object,
) -> CommitmentRecorded:
    history = [
        StatusChange(status=s, at=T0 + timedelta(days=70 + n), by="staff", note=extra.get("done_url"))  # type: ignore[arg-type]
        if s is CommitmentStatus.DONE
        else StatusChange(status=s, at=T0 + timedelta(days=70 + n), by="staff")
        for n, s in enumerate(statuses)
    ]
    return CommitmentRecorded.model_validate(
        {
            "event_id": f"e-{commitment_id}-{len(statuses)}",
            "occurred_at": history[-1].at,
            "consultation_id": cid,
            "commitment_id": commitment_id,
            "kind": kind,
            "dataset_id": None if kind is CommitmentKind.ADD else key,
            "suggestion_key": key if kind is CommitmentKind.ADD else None,
            "title": title or f"Jeu {key}",
            "service": "Service des musées",
            "target": "2027-T2",
            "status": statuses[-1],
            "note_fr": f"Note de {commitment_id}",
            "note_en": f"Note of {commitment_id}",
            "history": history,
            "updated_at": history[-1].at,
        }
        | extra
    )


DETECTION = DetectionSettings(
    burst_window_s=600, burst_min=20, same_window_s=3600, same_min=15, same_similarity=0.9, fast_fill_s=8, fast_min=10
)
# A reason a spreadsheet would take for a formula, to be escaped and read back.
REASONS = ["Rafale de nouveaux répondants depuis un même réseau", "-40 réponses identiques en 3 minutes"]


def stuffing(seed: int) -> tuple[dict[str, str], list[ExclusionInForce]]:
    """Random clusters over the respondents of `random_stream(seed)` (respondent key -> cluster id), and
    the clusters set aside, counting the respondents scoring holds a ballot of."""
    rng = random.Random(seed)
    keys = sorted({key for _, key in scored(random_stream(seed)).ballots})
    clusters = ["burst-a", "fast-c", "same-b"][: rng.randrange(1, 4)]
    cluster_of = {key: rng.choice(clusters) for key in rng.sample(keys, rng.randrange(5, 25))}
    exclusions = []
    for n, cid in enumerate(clusters):
        first = T0 + timedelta(seconds=rng.uniform(0, 86400))
        exclusions.append(
            ExclusionInForce(
                cluster_id=cid,
                reason=REASONS[n % len(REASONS)],
                signals=rng.sample(list(Signal), rng.randrange(1, 4)),
                first_at=first,
                last_at=first + timedelta(seconds=rng.uniform(60, 3600)),
                datasets=rng.sample(sorted(DATASETS), 2),
                respondents=sum(1 for c in cluster_of.values() if c == cid),
                settings=DETECTION,
            )
        )
    return cluster_of, exclusions


def marked_ballots(seed: int, cluster_of: dict[str, str]) -> list[CountedBallot]:
    store = scored(random_stream(seed))
    return [
        counted_ballot(b).model_copy(update={"exclusion": cluster_of.get(key)}) for (_, key), b in store.ballots.items()
    ]


class CaughtUp:
    async def end_offsets(self, topic: str) -> Offsets:
        return {(topic, 0): 10}

    async def committed(self, group: str, topic: str) -> Offsets:
        return {(topic, 0): 10}


class FakeScoring:
    """Scoring with the respondents of `cluster_of` (respondent key -> cluster id) set aside for the
    clusters `exclusions` lists: ballots marked, rankings served filtered."""

    def __init__(
        self,
        seed: int,
        drop_one_ballot: bool = False,
        cluster_of: Mapping[str, str] | None = None,
        exclusions: Sequence[ExclusionInForce] = (),
        view: RankingView = RankingView.FILTERED,
    ) -> None:
        stream = random_stream(seed)
        self.cluster_of = dict(cluster_of or {})
        self.store = scored(stream)
        self.filtered = scored([m for m in stream if m.response.respondent_key not in self.cluster_of])
        self.drop_one_ballot = drop_one_ballot
        self.listed = list(exclusions)
        self.view = view
        self.ballot_reads = 0

    async def ballots(self, consultation_id: str) -> list[CountedBallot]:
        self.ballot_reads += 1
        ballots = [
            counted_ballot(b).model_copy(update={"exclusion": self.cluster_of.get(key)})
            for (_, key), b in self.store.ballots.items()
        ]
        return ballots[1:] if self.drop_one_ballot else ballots

    async def exclusions(self, consultation_id: str) -> list[ExclusionInForce]:
        return self.listed

    def positions(self, topic: str) -> Offsets:
        return {(topic, 0): 10}

    async def pages(self, consultation_id: str, watermark: Offsets) -> dict[RankingKind, RankingPage]:
        return {kind: self.page(consultation_id, kind) for kind in RankingKind}

    def page(self, consultation_id: str, kind: RankingKind) -> RankingPage:
        store = self.filtered if self.view is RankingView.FILTERED else self.store
        rows = store.stored_rows(kind)
        if kind is RankingKind.SUGGESTIONS:
            rows = [r.__class__(r.key, r.key if r.key == "d3" else None, None, r.counts) for r in rows]
        items = rank(kind, rows, DEFAULT_WEIGHTS)
        return RankingPage(
            consultation_id=consultation_id,
            kind=kind,
            as_of=None,
            respondents=len(store.ballots),
            total=len(items),
            offset=0,
            limit=len(items),
            method=method(DEFAULT_WEIGHTS),
            items=items,
            view=self.view,
            excluded_respondents=len(self.store.ballots) - len(self.filtered.ballots),
        )


class FakeEmitter:
    def __init__(self) -> None:
        self.emitted: list[ResultsPublished] = []

    async def emit_once(self, results: ResultsPublished) -> tuple[ResultsPublished, bool]:
        if self.emitted:
            return self.emitted[0], False
        self.emitted.append(results)
        return results, True


class FakeResultsRepository:
    """The results store in memory: what was saved, and how many times."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[ResultsPublished, dict[str, bytes]]] = {}
        self.saves = 0

    async def get(self, consultation_id: str) -> Publication | None:
        if consultation_id not in self.saved:
            return None
        results, files = self.saved[consultation_id]
        return Publication(
            results, {n: StoredFile(n, hashlib.sha256(d).hexdigest(), len(d), 1) for n, d in files.items()}, None
        )

    async def save(self, results: ResultsPublished, files: Mapping[str, bytes]) -> None:
        self.saves += 1
        self.saved[results.consultation_id] = (results, dict(files))

    async def file(self, consultation_id: str, stored: StoredFile) -> bytes:
        return self.saved[consultation_id][1][stored.name]

    async def release(self, consultation_id: str, at: datetime) -> None:
        raise NotImplementedError


def closed_consultation() -> ConsultationDefined:
    now = utc_now()
    return ConsultationDefined(
        event_id="e", occurred_at=now, consultation_id="c1", title="t",
        opens_at=now - timedelta(days=1), closes_at=now - timedelta(seconds=10),
    )  # fmt: skip


def closer(scoring: FakeScoring, emitter: FakeEmitter, repository: FakeResultsRepository) -> Closer:
    def report(results: ResultsPublished, archive: list[Respondent], follow_up: FollowUp, min_cell: int) -> bytes:
        return f"{results.respondents} {len(archive)}".encode()

    return Closer(
        {"c1": closed_consultation()},
        CaughtUp(),
        scoring,
        scoring,  # the archive: the same ballots as scoring's (or not, when a test drops one)
        emitter,
        repository,
        DATASETS.get,
        "test",
        report,  # type: ignore[arg-type]
        settle=timedelta(seconds=1),
        poll_interval_s=1.0,
        metrics=PublisherMetrics(CollectorRegistry()),
        logger=logging.getLogger("test"),
    )


def results_event(cid: str, respondents: int) -> ResultsPublished:
    """Results of `cid` as an event, with empty rankings."""
    now = utc_now()
    return ResultsPublished(
        event_id=results_event_id(cid),
        occurred_at=now,
        consultation_id=cid,
        title="t",
        opens_at=now - timedelta(days=1),
        closes_at=now,
        frozen_at=now,
        respondents=respondents,
        method=RankingMethod(weights={}, formula="f", tie_break="t"),
        open=[],
        improve=[],
        suggestions=[],
    )

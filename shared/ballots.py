"""A respondent's ballot and staff's decisions on flagged clusters, as pure functions shared by the two
services that fold the enriched responses: scoring (into its tallies) and the publisher (into the
archive it freezes at the close). One definition, so both count the same ballot for each respondent
and set aside the same respondents.

A respondent's *ballot* is their latest submission (by receipt time, then response id); a submission
already seen changes nothing, so redeliveries and retried POSTs count once. A respondent listed in
a cluster staff excluded stays out while any such cluster lists them, attributed to the smallest
cluster id.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from shared.contracts import (
    CountedBallot,
    CountedImprovement,
    CountedOpen,
    CountedSuggestion,
    Decision,
    ExclusionDecided,
    ExclusionInForce,
    ImprovementKind,
    Priority,
    Profile,
    ResponseEnriched,
)


@dataclass(frozen=True)
class Ballot:
    """A respondent's latest submission to a consultation, and every submission id already seen."""

    consultation_id: str
    respondent_key: str
    response_id: str
    received_at: datetime
    profile: Profile
    open: tuple[tuple[str, Priority], ...]
    improve: tuple[tuple[str, tuple[ImprovementKind, ...]], ...]
    suggestions: tuple[tuple[str, str | None], ...]  # (group key, matched dataset id)
    titles: tuple[tuple[str, str], ...]  # (row key, title) for display
    seen: frozenset[str]
    version: int = 0
    withdrawn: bool = False

    @property
    def order(self) -> tuple[datetime, str]:
        return self.received_at, self.response_id


def ballot_of(enriched: ResponseEnriched, seen: frozenset[str], version: int) -> Ballot:
    """The ballot a submission casts. Each dataset counts once, at its highest priority."""
    response = enriched.response
    rank = list(Priority)
    open_requests: dict[str, Priority] = {}
    for request in response.open_requests:
        previous = open_requests.get(request.dataset_id)
        if previous is None or rank.index(request.priority) < rank.index(previous):
            open_requests[request.dataset_id] = request.priority
    improve: dict[str, set[ImprovementKind]] = {}
    for improvement in response.improvement_requests:
        improve.setdefault(improvement.dataset_id, set()).update(improvement.kinds)
    suggestions: dict[str, str | None] = {}
    titles = {dataset_id: summary.title for dataset_id, summary in enriched.datasets.items()}
    for match in enriched.suggestions:
        suggestions.setdefault(match.group_key, match.matched_dataset_id)
        titles.setdefault(match.group_key, match.title)
    return Ballot(
        consultation_id=response.consultation_id,
        respondent_key=response.respondent_key,
        response_id=response.response_id,
        received_at=response.received_at,
        profile=response.profile,
        open=tuple(sorted(open_requests.items())),
        improve=tuple(sorted((d, tuple(sorted(k))) for d, k in improve.items())),
        suggestions=tuple(sorted(suggestions.items())),
        titles=tuple(sorted(titles.items())),
        seen=seen | {response.response_id},
        version=version,
        withdrawn=response.withdrawn,
    )


def fold(current: Ballot | None, submissions: Iterable[ResponseEnriched]) -> Ballot | None:
    """The ballot after these submissions: the latest (by receipt time, then id) wins; a
    submission already seen changes nothing, so redeliveries and retried POSTs count once."""
    for enriched in sorted(submissions, key=lambda e: (e.response.received_at, e.response.response_id)):
        response_id = enriched.response.response_id
        if current is not None and response_id in current.seen:
            continue
        if current is None or (enriched.response.received_at, response_id) > current.order:
            seen = current.seen if current else frozenset()
            version = current.version if current else 0
            current = ballot_of(enriched, seen, version)
        else:
            current = replace(current, seen=current.seen | {response_id})
    return current


def counted_ballot(ballot: Ballot, exclusion: str | None = None) -> CountedBallot:
    """A ballot as the publisher archives it: no respondent key, no ids of earlier submissions; with
    the cluster its respondent is set aside for, if any."""
    titles = dict(ballot.titles)
    # Built from a validated submission: constructed without validating it again (a million ballots at a close).
    return CountedBallot.model_construct(
        response_id=ballot.response_id,
        received_at=ballot.received_at,
        profile=ballot.profile,
        submissions=len(ballot.seen),
        open=[CountedOpen.model_construct(dataset_id=d, priority=p) for d, p in ballot.open],
        improve=[CountedImprovement.model_construct(dataset_id=d, kinds=list(kinds)) for d, kinds in ballot.improve],
        suggestions=[
            CountedSuggestion.model_construct(group_key=g, dataset_id=m, title=titles.get(g, g))
            for g, m in ballot.suggestions
        ],
        exclusion=exclusion,
    )


def counts(ballot: Ballot | None) -> int:
    """Whether a ballot makes its respondent one of the consultation's respondents."""
    return int(ballot is not None and not ballot.withdrawn)


@dataclass(frozen=True)
class Cluster:
    """Staff's latest decision on one flagged cluster, as scoring applied it."""

    consultation_id: str
    cluster_id: str
    decision: Decision
    respondent_keys: frozenset[str]
    position: int  # offset of the decision in its partition (one per key): a later one replaces it
    decided: ExclusionDecided | None = None  # None once forgotten (a tombstone on the topic)

    @property
    def key(self) -> tuple[str, str]:
        return self.consultation_id, self.cluster_id

    @property
    def excludes(self) -> bool:
        return self.decision is Decision.EXCLUDE


def cluster_of(decided: ExclusionDecided, position: int) -> Cluster:
    """The cluster as a decision leaves it."""
    return Cluster(
        consultation_id=decided.consultation_id,
        cluster_id=decided.cluster_id,
        decision=decided.decision,
        respondent_keys=frozenset(decided.respondent_keys),
        position=position,
        decided=decided,
    )


def forgotten(consultation_id: str, cluster_id: str, position: int) -> Cluster:
    """A cluster whose decision was deleted from the topic: nobody is set aside for it."""
    return Cluster(consultation_id, cluster_id, Decision.CLEAR, frozenset(), position)


def attribution(clusters: Iterable[Cluster]) -> dict[tuple[str, str], str]:
    """Each respondent set aside and the cluster they are attributed to: they stay out while any
    cluster listing them is excluded, attributed to the smallest such cluster id."""
    attributed: dict[tuple[str, str], str] = {}
    for cluster in sorted(clusters, key=lambda c: c.key):
        if cluster.excludes:
            for respondent_key in cluster.respondent_keys:
                attributed.setdefault((cluster.consultation_id, respondent_key), cluster.cluster_id)
    return attributed


def exclusions_in_force(
    clusters: Iterable[Cluster], attributed: Mapping[str, str], ballots: Iterable[Ballot]
) -> list[ExclusionInForce]:
    """The clusters excluded now, by id, each with the counted ballots of the respondents attributed to it."""
    set_aside: Counter[str] = Counter()
    for ballot in ballots:
        if counts(ballot) and ballot.respondent_key in attributed:
            set_aside[attributed[ballot.respondent_key]] += 1
    return [
        ExclusionInForce(
            cluster_id=cluster.cluster_id,
            reason=cluster.decided.reason,
            signals=cluster.decided.signals,
            first_at=cluster.decided.first_at,
            last_at=cluster.decided.last_at,
            datasets=cluster.decided.datasets,
            respondents=set_aside[cluster.cluster_id],
            settings=cluster.decided.settings,
        )
        for cluster in sorted(clusters, key=lambda c: c.cluster_id)
        if cluster.excludes and cluster.decided is not None
    ]

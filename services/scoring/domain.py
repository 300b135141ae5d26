"""The default ranking (DESIGN §4) as pure functions.

A respondent's *ballot* is their latest submission. Rankings are tallies over ballots: when a
ballot is replaced, the old one's contributions are withdrawn and the new one's added. Tallies
hold counts (respondents per priority, per profile, per kind of improvement), never weighted
scores, so the weights stay configuration: the score is computed when a ranking is read.

Staff may set aside the respondents of a flagged cluster (ballot stuffing). The raw tallies keep
counting everyone; beside them, the *excluded tallies* hold the contributions of the ballots of
the respondents set aside, so a filtered row is the raw row minus the excluded one.
"""

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.contracts import (
    CountedBallot,
    CountedImprovement,
    CountedOpen,
    CountedSuggestion,
    DatasetSummary,
    Decision,
    ExclusionDecided,
    ExclusionInForce,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    RankingMethod,
    RankingRow,
    RankUncertainty,
    ResponseEnriched,
    Tally,
)
from shared.uncertainty import Answers, pseudonymous_order

DEFAULT_WEIGHTS: Mapping[Priority, int] = {Priority.ESSENTIAL: 3, Priority.IMPORTANT: 2, Priority.USEFUL: 1}
RESPONDENTS = "respondents"

# A tally field: ("respondents",), ("priority", p), ("improvement", k),
# ("profile", p, "respondents") or ("profile", p, priority).
TallyField = tuple[str, ...]


@dataclass(frozen=True)
class RowId:
    consultation_id: str
    kind: RankingKind
    key: str


@dataclass
class RowChange:
    """Increments to one ranking row's tallies, and its display fields."""

    counts: Counter[TallyField] = field(default_factory=Counter)
    dataset_id: str | None = None
    title: str | None = None

    def add(self, other: "RowChange", sign: int = 1) -> None:
        for name, value in other.counts.items():
            self.counts[name] += sign * value
        self.dataset_id = self.dataset_id or other.dataset_id
        if sign > 0 and other.title:
            self.title = other.title

    def is_null(self) -> bool:
        return not any(self.counts.values())


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
    return CountedBallot(
        response_id=ballot.response_id,
        received_at=ballot.received_at,
        profile=ballot.profile,
        submissions=len(ballot.seen),
        open=[CountedOpen(dataset_id=d, priority=p) for d, p in ballot.open],
        improve=[CountedImprovement(dataset_id=d, kinds=list(kinds)) for d, kinds in ballot.improve],
        suggestions=[
            CountedSuggestion(group_key=g, dataset_id=m, title=titles.get(g, g)) for g, m in ballot.suggestions
        ],
        exclusion=exclusion,
    )


def contributions(ballot: Ballot) -> dict[RowId, RowChange]:
    """What one ballot adds to each ranking row (nothing, once withdrawn)."""
    rows: dict[RowId, RowChange] = {}
    if ballot.withdrawn:
        return rows
    titles = dict(ballot.titles)
    profile = ballot.profile.value

    def row(kind: RankingKind, key: str, dataset_id: str | None) -> RowChange:
        change = rows.setdefault(
            RowId(ballot.consultation_id, kind, key), RowChange(dataset_id=dataset_id, title=titles.get(key))
        )
        change.counts[(RESPONDENTS,)] += 1
        change.counts[("profile", profile, RESPONDENTS)] += 1
        return change

    for dataset_id, priority in ballot.open:
        change = row(RankingKind.OPEN, dataset_id, dataset_id)
        change.counts[("priority", priority.value)] += 1
        change.counts[("profile", profile, priority.value)] += 1
    for dataset_id, kinds in ballot.improve:
        change = row(RankingKind.IMPROVE, dataset_id, dataset_id)
        for kind in kinds:
            change.counts[("improvement", kind.value)] += 1
    for group_key, matched in ballot.suggestions:
        row(RankingKind.SUGGESTIONS, group_key, matched)
    return rows


def ballot_change(old: Ballot | None, new: Ballot | None) -> dict[RowId, RowChange]:
    """Row increments that replace `old`'s contributions by `new`'s (zero changes dropped)."""
    changes: dict[RowId, RowChange] = {}
    for sign, ballot in ((-1, old), (1, new)):
        if ballot is None:
            continue
        for row_id, change in contributions(ballot).items():
            changes.setdefault(row_id, RowChange()).add(change, sign)
    return {row_id: change for row_id, change in changes.items() if not change.is_null()}


@dataclass
class ConsultationChange:
    respondents: int = 0
    responses: int = 0
    as_of: datetime | None = None
    excluded_respondents: int = 0


@dataclass
class BatchPlan:
    """Everything one batch changes, to be written atomically."""

    ballots: list[tuple[Ballot | None, Ballot]] = field(default_factory=list)  # (stored, new)
    rows: dict[RowId, RowChange] = field(default_factory=dict)
    consultations: dict[str, ConsultationChange] = field(default_factory=dict)
    excluded_rows: dict[RowId, RowChange] = field(default_factory=dict)


def counts(ballot: Ballot | None) -> int:
    """Whether a ballot makes its respondent one of the consultation's respondents."""
    return int(ballot is not None and not ballot.withdrawn)


def plan_batch(
    submissions: Iterable[ResponseEnriched],
    stored: Mapping[tuple[str, str], Ballot],
    excluded: Collection[tuple[str, str]] = frozenset(),
) -> BatchPlan:
    """Fold a batch into the stored ballots and sum the row changes, one entry per row; the changes of
    the respondents set aside (`excluded`) go to the excluded tallies too."""
    by_respondent: dict[tuple[str, str], list[ResponseEnriched]] = {}
    for enriched in submissions:
        key = (enriched.response.consultation_id, enriched.response.respondent_key)
        by_respondent.setdefault(key, []).append(enriched)
    plan = BatchPlan()
    for key, batch in by_respondent.items():
        old = stored.get(key)
        new = fold(old, batch)
        if new is None or new == old:
            continue
        plan.ballots.append((old, new))
        consultation = plan.consultations.setdefault(key[0], ConsultationChange())
        consultation.respondents += counts(new) - counts(old)
        consultation.responses += len(new.seen) - (len(old.seen) if old else 0)
        if consultation.as_of is None or new.received_at > consultation.as_of:
            consultation.as_of = new.received_at
        change = ballot_change(old, new)
        _add_rows(plan.rows, change)
        if key in excluded:
            consultation.excluded_respondents += counts(new) - counts(old)
            _add_rows(plan.excluded_rows, change)
    return plan


def _add_rows(into: dict[RowId, RowChange], changes: Mapping[RowId, RowChange], sign: int = 1) -> None:
    for row_id, change in changes.items():
        into.setdefault(row_id, RowChange()).add(change, sign)


# --- exclusions -----------------------------------------------------------------------------------


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


def newer_decisions(decisions: Iterable[Cluster], stored: Mapping[tuple[str, str], Cluster]) -> list[Cluster]:
    """The latest decision on each cluster, where it is later than the one stored: a redelivered or
    older decision changes nothing."""
    latest: dict[tuple[str, str], Cluster] = {}
    for cluster in decisions:
        current = latest.get(cluster.key) or stored.get(cluster.key)
        if current is None or cluster.position > current.position:
            latest[cluster.key] = cluster
    return sorted(latest.values(), key=lambda c: c.key)


def attribution(clusters: Iterable[Cluster]) -> dict[tuple[str, str], str]:
    """Each respondent set aside and the cluster they are attributed to: they stay out while any
    cluster listing them is excluded, attributed to the smallest such cluster id."""
    attributed: dict[tuple[str, str], str] = {}
    for cluster in sorted(clusters, key=lambda c: c.key):
        if cluster.excludes:
            for respondent_key in cluster.respondent_keys:
                attributed.setdefault((cluster.consultation_id, respondent_key), cluster.cluster_id)
    return attributed


def respondents_touched(
    decisions: Iterable[Cluster], stored: Mapping[tuple[str, str], Cluster]
) -> set[tuple[str, str]]:
    """Respondents whose attribution these decisions may change: those listed before or after."""
    touched = set()
    for cluster in decisions:
        before = stored.get(cluster.key)
        for respondent_key in cluster.respondent_keys | (before.respondent_keys if before else frozenset()):
            touched.add((cluster.consultation_id, respondent_key))
    return touched


@dataclass
class ExclusionPlan:
    """Everything a batch of decisions changes, to be written atomically."""

    clusters: list[Cluster] = field(default_factory=list)
    respondents: dict[tuple[str, str], str | None] = field(default_factory=dict)  # new attribution; None: back in
    excluded_rows: dict[RowId, RowChange] = field(default_factory=dict)
    excluded_respondents: dict[str, int] = field(default_factory=dict)  # change of the count, per consultation
    excluded_clusters: dict[str, int] = field(default_factory=dict)  # clusters excluded now, per consultation

    @property
    def consultations(self) -> set[str]:
        return {c.consultation_id for c in self.clusters}

    @property
    def is_empty(self) -> bool:
        return not self.clusters


def plan_exclusions(
    decisions: Iterable[Cluster],
    stored: Mapping[tuple[str, str], Cluster],
    attributed: Mapping[tuple[str, str], str],
    ballots: Mapping[tuple[str, str], Ballot],
) -> ExclusionPlan:
    """Apply decisions to the stored clusters (every cluster of their consultations), moving the
    respondents whose attribution changes (`attributed`: theirs now) and their ballots' contributions
    in or out of the excluded tallies."""
    changed = newer_decisions(decisions, stored)
    plan = ExclusionPlan(clusters=changed)
    if not changed:
        return plan
    clusters = dict(stored) | {c.key: c for c in changed}
    after = attribution(clusters.values())
    for consultation_id in plan.consultations:
        plan.excluded_clusters[consultation_id] = sum(
            c.excludes for c in clusters.values() if c.consultation_id == consultation_id
        )
        plan.excluded_respondents[consultation_id] = 0
    for key in sorted(respondents_touched(changed, stored)):
        was, now = attributed.get(key), after.get(key)
        if was == now:
            continue
        plan.respondents[key] = now
        ballot = ballots.get(key)
        if ballot is None or (was is None) == (now is None):
            continue  # no ballot yet, or only the cluster it is attributed to changes
        sign = 1 if now is not None else -1
        plan.excluded_respondents[key[0]] += sign * counts(ballot)
        _add_rows(plan.excluded_rows, contributions(ballot), sign)
    plan.excluded_rows = {row_id: change for row_id, change in plan.excluded_rows.items() if not change.is_null()}
    return plan


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


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRow:
    key: str
    dataset_id: str | None
    title: str | None
    counts: Mapping[TallyField, int]


def method(weights: Mapping[Priority, int], uncertainty: RankUncertainty | None = None) -> RankingMethod:
    """The published statement of the ranking method with the weights in force (and the bootstrap of the
    rank intervals, when the answer carries them)."""
    return RankingMethod(
        weights=dict(weights),
        uncertainty=uncertainty,
        formula=(
            "open: score = sum over respondents asking to open the dataset of "
            "weight(priority), with their latest submission only; improve: score = "
            "respondents asking to improve the dataset; suggestions: score = respondents "
            "whose suggestion falls in the group"
        ),
        tie_break="higher score first, then more respondents, then key (dataset id) ascending",
    )


def _score(
    kind: RankingKind,
    counts: Mapping[TallyField, int],
    weights: Mapping[Priority, int],
    prefix: TallyField = (),
) -> int:
    if kind is RankingKind.OPEN:
        return sum(
            weight * counts.get((*prefix, p.value) if prefix else ("priority", p.value), 0)
            for p, weight in weights.items()
        )
    return counts.get((*prefix, RESPONDENTS), 0)


def rank(
    kind: RankingKind,
    rows: Iterable[StoredRow],
    weights: Mapping[Priority, int],
    profile: Profile | None = None,
) -> list[RankingRow]:
    """Rows in ranking order (score, then respondents, descending; then key ascending).

    With a profile, scores and respondents are those of that profile alone."""
    ranked = []
    for row in rows:
        by_profile = {}
        for p in Profile:
            respondents = row.counts.get(("profile", p.value, RESPONDENTS), 0)
            if respondents:
                by_profile[p] = Tally(
                    score=_score(kind, row.counts, weights, ("profile", p.value)), respondents=respondents
                )
        if profile is None:
            score, respondents = _score(kind, row.counts, weights), row.counts.get((RESPONDENTS,), 0)
        elif profile in by_profile:
            score, respondents = by_profile[profile].score, by_profile[profile].respondents
        else:
            continue
        if respondents <= 0:
            continue
        improvements = {k: row.counts.get(("improvement", k.value), 0) for k in ImprovementKind}
        prefix = ("priority",) if profile is None else ("profile", profile.value)
        priorities = {p: row.counts.get((*prefix, p.value), 0) for p in Priority}
        ranked.append(
            (
                score,
                respondents,
                row,
                by_profile,
                {k: n for k, n in improvements.items() if n},
                {p: n for p, n in priorities.items() if n},
            )
        )
    ranked.sort(key=lambda item: (-item[0], -item[1], item[2].key))
    return [
        RankingRow(
            rank=position,
            key=row.key,
            dataset_id=row.dataset_id,
            title=row.title,
            score=score,
            respondents=respondents,
            by_profile=by_profile,
            by_priority=priorities,
            by_improvement=improvements,
        )
        for position, (score, respondents, row, by_profile, improvements, priorities) in enumerate(ranked, start=1)
    ]


def filtered(raw: Iterable[StoredRow], excluded: Iterable[StoredRow]) -> list[StoredRow]:
    """The raw rows less the contributions of the respondents set aside."""
    aside = {row.key: row.counts for row in excluded}
    rows = []
    for row in raw:
        counts = dict(row.counts)
        for name, n in aside.get(row.key, {}).items():
            counts[name] = counts.get(name, 0) - n
        rows.append(replace(row, counts={name: n for name, n in counts.items() if n}))
    return rows


def with_catalogue(rows: Iterable[RankingRow], current: Callable[[str], DatasetSummary | None]) -> list[RankingRow]:
    """Rows with each dataset's title and status as the catalogue has them now."""
    updated = []
    for row in rows:
        dataset = current(row.dataset_id) if row.dataset_id else None
        if dataset is not None:
            row = row.model_copy(update={"title": dataset.title, "status": dataset.status})
        updated.append(row)
    return updated


def respondent_answers(
    consultation_id: str, ballots: Iterable[Ballot], set_aside: Collection[str] = frozenset()
) -> list[Answers]:
    """The counted answers of each respondent counted (not withdrawn, not `set_aside`), in the order the
    published archive numbers them, as the rank intervals resample them."""
    counted = [b for b in ballots if not b.withdrawn and b.respondent_key not in set_aside]
    counted.sort(key=lambda b: (pseudonymous_order(consultation_id, b.response_id), b.response_id))
    return [
        [
            *((RankingKind.OPEN, d, p) for d, p in b.open),
            *((RankingKind.IMPROVE, d, None) for d, _ in b.improve),
            *((RankingKind.SUGGESTIONS, g, None) for g, _ in b.suggestions),
        ]
        for b in counted
    ]

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

from shared.ballots import (
    Ballot,
    Cluster,
    attribution,
    ballot_of,
    cluster_of,
    counted_ballot,
    counts,
    exclusions_in_force,
    fold,
    forgotten,
)
from shared.contracts import (
    DatasetSummary,
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

# The ballot and the clusters are defined in `shared.ballots`, which the publisher folds the same way.
__all__ = [
    "Ballot",
    "Cluster",
    "attribution",
    "ballot_of",
    "cluster_of",
    "counted_ballot",
    "counts",
    "exclusions_in_force",
    "fold",
    "forgotten",
]

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


def newer_decisions(decisions: Iterable[Cluster], stored: Mapping[tuple[str, str], Cluster]) -> list[Cluster]:
    """The latest decision on each cluster, where it is later than the one stored: a redelivered or
    older decision changes nothing."""
    latest: dict[tuple[str, str], Cluster] = {}
    for cluster in decisions:
        current = latest.get(cluster.key) or stored.get(cluster.key)
        if current is None or cluster.position > current.position:
            latest[cluster.key] = cluster
    return sorted(latest.values(), key=lambda c: c.key)


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

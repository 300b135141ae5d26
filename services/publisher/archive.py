"""The published results' archive and rankings: the pseudonymised archive, the rankings recomputed from it
with the published method, the clusters set aside, and the checks between the frozen and the published
results. Pure: no I/O, no file format (`files` renders and reads back the published files).

Nothing published identifies anyone (DESIGN §3): the public archive is derived from the internal one
(respondents in an order that is not receipt order, weeks not days, rare profiles pooled, no free
text of small suggestion groups), the published rankings are computed from the public archive, and
every breakdown cell between 1 and `min_cell - 1` is suppressed. The internal archive only serves the
cross-check against scoring's tallies, which compares full detail.

Everything here is a pure function of the archive, the dataset snapshot and the method, so that two
publisher replicas, or a restart, publish the same results, and the audit ranks the published archive
again with the same code.

Suspected stuffing is set aside openly: the archive keeps every counted respondent, each marked with
the excluded cluster it is set aside for (or nothing); the clusters set aside are an input, as frozen
at the close; the published rankings are the filtered ones, computed from the respondents not set aside
for one of them.
"""

import functools
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.contracts import (
    CommitmentKind,
    CommitmentRecorded,
    CountedBallot,
    DatasetStatus,
    ExcerptApproved,
    ExclusionInForce,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    RankingMethod,
    RankingRow,
    ResultsPublished,
    Tally,
)
from shared.uncertainty import (
    DEFAULT_LEVEL,
    alternative_ranks,
    intervals_of,
    method_of,
    pseudonymous_order,
    seed_of,
    with_intervals,
)

MIN_CELL = 5
OPAQUE_PREFIX = "groupe-"

FORMULA = {
    "fr": (
        "À ouvrir : score = somme, sur les répondants demandant l'ouverture du jeu de données, du poids "
        "de la priorité donnée (essentiel, important, utile), avec la dernière réponse de chacun. "
        "À améliorer : score = nombre de répondants demandant l'amélioration du jeu de données. "
        "Suggestions : regroupées (même jeu de données du catalogue si rapprochées, sinon même titre "
        "normalisé) ; score = nombre de répondants. Égalités : plus de répondants d'abord, puis "
        "identifiant croissant."
    ),
    "en": (
        "To open: score = sum, over respondents asking for the dataset to be opened, of the weight of "
        "the priority they gave (essential, important, useful), with each respondent's latest response. "
        "To improve: score = respondents asking for the dataset to be improved. Suggestions: grouped "
        "(same catalogue dataset when matched, else same normalised title); score = respondents. Ties: "
        "more respondents first, then identifier ascending."
    ),
}


@dataclass(frozen=True)
class DatasetRef:
    """A catalogue dataset as the results show it."""

    dataset_id: str
    title: str
    status: DatasetStatus


@dataclass(frozen=True)
class Answer:
    """One line of a respondent's counted response."""

    ranking: RankingKind
    key: str
    dataset_id: str | None
    priority: Priority | None = None
    improvements: tuple[ImprovementKind, ...] = ()
    title: str = ""


@dataclass(frozen=True)
class Respondent:
    """A respondent of the archive: renumbered, no identifier, no e-mail, no token. In the public
    archive, `received_on` is the Monday of the ISO week of the counted response, not its day.
    `exclusion` is the excluded cluster the respondent is set aside for, or empty: the archive keeps
    everyone, the rankings count those not set aside."""

    number: int
    profile: Profile
    received_on: date
    submissions: int
    answers: tuple[Answer, ...]
    exclusion: str = ""


@dataclass(frozen=True)
class Consultation:
    """What the results say about the consultation itself."""

    consultation_id: str
    title: str
    opens_at: datetime
    closes_at: datetime
    frozen_at: datetime


@dataclass(frozen=True)
class Method:
    """The published method: weights in force, formula, tie-break, and the code that applied it."""

    weights: Mapping[Priority, int]
    code_version: str
    min_cell: int = MIN_CELL
    resamples: int | None = None  # bootstrap resamples of the rank intervals; None: files without intervals
    level: int = DEFAULT_LEVEL

    @property
    def ranking_method(self) -> RankingMethod:
        return RankingMethod(
            weights=dict(self.weights),
            formula=FORMULA["en"],
            tie_break="higher score first, then more respondents, then key (dataset id) ascending",
        )


# The ranking each kind of commitment answers: what the ministry commits to open, improve or add.
COMMITMENT_RANKING = {
    CommitmentKind.OPEN: RankingKind.OPEN,
    CommitmentKind.IMPROVE: RankingKind.IMPROVE,
    CommitmentKind.ADD: RankingKind.SUGGESTIONS,
}


@dataclass(frozen=True)
class Engagement:
    """A commitment with the row of the published ranking it answers (None when that was not ranked),
    and the suggestion group's key as published (opaque for a small group)."""

    commitment: CommitmentRecorded
    ranked: RankingRow | None
    suggestion_key: str | None = None


@dataclass(frozen=True)
class FollowUp:
    """What the ministry will do about a consultation's results, and the excerpts approved for publication."""

    engagements: tuple[Engagement, ...] = ()
    excerpts: tuple[ExcerptApproved, ...] = ()


def follow_up_of(
    results: ResultsPublished, commitments: Iterable[CommitmentRecorded], excerpts: Iterable[ExcerptApproved]
) -> FollowUp:
    """The consultation's commitments, ordered by kind, rank at the close and id, with their rows in the
    published rankings (a small suggestion group under its opaque key); and its excerpts still approved,
    ordered by id. Nothing else of the inputs is kept."""
    cid = results.consultation_id
    rows = {
        RankingKind.OPEN: {r.key: r for r in results.open},
        RankingKind.IMPROVE: {r.key: r for r in results.improve},
        RankingKind.SUGGESTIONS: {r.key: r for r in results.suggestions},
    }
    kinds = list(CommitmentKind)

    def engagement(c: CommitmentRecorded) -> Engagement:
        ranking = rows[COMMITMENT_RANKING[c.kind]]
        if c.suggestion_key is None:
            return Engagement(c, ranking.get(c.dataset_id or ""))
        row = ranking.get(c.suggestion_key) or ranking.get(opaque_key(c.suggestion_key))
        return Engagement(c, row, row.key if row else public_key(c.suggestion_key))

    engagements = [engagement(c) for c in commitments if c.consultation_id == cid]
    engagements.sort(
        key=lambda e: (
            kinds.index(e.commitment.kind),
            e.ranked is None,
            e.ranked.rank if e.ranked else 0,
            e.commitment.commitment_id,
        )
    )
    approved = sorted((e for e in excerpts if e.consultation_id == cid and e.approved), key=lambda e: e.excerpt_id)
    return FollowUp(tuple(engagements), tuple(approved))


@functools.lru_cache(maxsize=65_536)
def _answer(
    ranking: RankingKind,
    key: str,
    dataset_id: str | None,
    priority: Priority | None = None,
    improvements: tuple[ImprovementKind, ...] = (),
    title: str = "",
) -> Answer:
    """Answers are values, and few distinct ones recur across millions of respondents: one instance each."""
    return Answer(ranking, key, dataset_id, priority, improvements, title)


def answers_of(
    open_requests: Iterable[tuple[str, Priority]],
    improvements: Iterable[tuple[str, Sequence[ImprovementKind]]],
    suggestions: Iterable[tuple[str, str | None, str]],
) -> tuple[Answer, ...]:
    """A counted response's lines: datasets to open (id, priority), to improve (id, kinds) and suggestions
    (group key, matched dataset id, title)."""
    answers = [_answer(RankingKind.OPEN, d, d, p) for d, p in open_requests]
    answers += [_answer(RankingKind.IMPROVE, d, d, None, tuple(kinds)) for d, kinds in improvements]
    answers += [_answer(RankingKind.SUGGESTIONS, g, m, None, (), title) for g, m, title in suggestions]
    return tuple(answers)


@dataclass(frozen=True, slots=True)
class Counted:
    """A respondent's counted response as the archives are built from it: what a `CountedBallot` says,
    its lines already read (the publisher's ledger builds these directly, without a model per ballot)."""

    response_id: str
    received_at: datetime
    profile: Profile
    submissions: int
    answers: tuple[Answer, ...]
    exclusion: str = ""


def counted_of(ballot: CountedBallot | Counted) -> Counted:
    if isinstance(ballot, Counted):
        return ballot
    answers = answers_of(
        ((o.dataset_id, o.priority) for o in ballot.open),
        ((i.dataset_id, i.kinds) for i in ballot.improve),
        ((s.group_key, s.dataset_id, s.title) for s in ballot.suggestions),
    )
    return Counted(
        ballot.response_id, ballot.received_at, ballot.profile, ballot.submissions, answers, ballot.exclusion or ""
    )


def archive_of(ballots: Iterable[CountedBallot | Counted]) -> list[Respondent]:
    """The internal archive, for the cross-check against scoring: respondents numbered 1… in the order
    their counted response was received (ties by its id, which is then dropped). Never published."""
    ordered = sorted(map(counted_of, ballots), key=lambda b: (b.received_at, b.response_id))
    return [
        Respondent(number, b.profile, b.received_at.date(), b.submissions, b.answers, b.exclusion)
        for number, b in enumerate(ordered, start=1)
    ]


def counted(archive: Iterable[Respondent], exclusions: Iterable[ExclusionInForce]) -> list[Respondent]:
    """The respondents the rankings count: those not set aside for one of `exclusions`."""
    excluded = {e.cluster_id for e in exclusions}
    return [r for r in archive if r.exclusion not in excluded]


def exclusion_problems(archive: Iterable[Respondent], exclusions: Iterable[ExclusionInForce]) -> list[str]:
    """Where the clusters set aside do not count what the archive marks: each cluster's `respondents`
    must be the respondents marked with it, and every mark must name a cluster set aside."""
    marked = Counter(r.exclusion for r in archive if r.exclusion)
    listed = {e.cluster_id: e.respondents for e in exclusions}
    problems = [
        f"cluster {cid}: {n} respondents declared, {marked.get(cid, 0)} in the archive"
        for cid, n in sorted(listed.items())
        if marked.get(cid, 0) != n
    ]
    return problems + [
        f"cluster {cid}: {n} respondents in the archive set aside for a cluster not listed"
        for cid, n in sorted(marked.items())
        if cid not in listed
    ]


def published_exclusions(exclusions: Iterable[ExclusionInForce]) -> list[ExclusionInForce]:
    """The clusters set aside as published: by cluster id, their first and last receipt to the minute
    (in UTC), not to the second of one respondent's answer."""

    def minute(instant: datetime) -> datetime:
        return instant.astimezone(UTC).replace(second=0, microsecond=0)

    return [
        e.model_copy(update={"first_at": minute(e.first_at), "last_at": minute(e.last_at)})
        for e in sorted(exclusions, key=lambda e: e.cluster_id)
    ]


def set_aside_by_reason(exclusions: Iterable[ExclusionInForce]) -> dict[str, int]:
    """Respondents set aside per public reason, the most first (then by reason)."""
    by_reason: Counter[str] = Counter()
    for e in exclusions:
        by_reason[e.reason] += e.respondents
    return dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))


def week_of(day: date) -> date:
    """The Monday of the ISO week of a day."""
    return day - timedelta(days=day.weekday())


def opaque_key(key: str) -> str:
    """The public key of a suggestion group too small to show the words its key is made of."""
    return OPAQUE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:10]


def public_key(key: str) -> str:
    """A suggestion key as published when its group is small: a catalogue dataset stays, typed words do not."""
    return key if key.startswith("dataset:") else opaque_key(key)


def pooled_profiles(respondents: Mapping[Profile, int], min_cell: int) -> frozenset[Profile]:
    """The profiles published as `other`: each with fewer than `min_cell` respondents; then, while
    `other` itself has between 1 and `min_cell - 1`, the smallest remaining profile too."""
    pooled = {p for p in Profile if p is not Profile.OTHER and 0 < respondents.get(p, 0) < min_cell}
    while 0 < respondents.get(Profile.OTHER, 0) + sum(respondents.get(p, 0) for p in pooled) < min_cell:
        rest = [p for p in Profile if p is not Profile.OTHER and p not in pooled and respondents.get(p, 0)]
        if not rest:
            break
        pooled.add(min(rest, key=lambda p: (respondents.get(p, 0), p.value)))
    return frozenset(pooled)


def anonymised(respondents: Sequence[Respondent], min_cell: int) -> list[Respondent]:
    """The public form of an archive, respondents kept in the order given and renumbered 1…: weeks
    instead of days, rare profiles pooled as `other`, and no free text: a suggestion answer carries its
    group's title (the one most of its respondents typed) only when the group has at least `min_cell`
    respondents; a smaller group has no title, and a key made of typed words becomes opaque."""
    pooled = pooled_profiles(Counter(r.profile for r in respondents), min_cell)
    sizes: Counter[str] = Counter()
    titles: dict[str, Counter[str]] = {}
    for respondent in respondents:
        for answer in respondent.answers:
            if answer.ranking is RankingKind.SUGGESTIONS:
                sizes[answer.key] += 1
                if answer.title:
                    titles.setdefault(answer.key, Counter())[answer.title] += 1
    group_titles = {key: min(typed.items(), key=lambda item: (-item[1], item[0]))[0] for key, typed in titles.items()}

    def public(answer: Answer) -> Answer:
        if answer.ranking is not RankingKind.SUGGESTIONS:
            return answer
        if sizes[answer.key] >= min_cell:
            return replace(answer, title=group_titles.get(answer.key, ""))
        return replace(answer, key=answer.key if answer.dataset_id else opaque_key(answer.key), title="")

    return [
        Respondent(
            number,
            Profile.OTHER if r.profile in pooled else r.profile,
            week_of(r.received_on),
            r.submissions,
            tuple(public(a) for a in r.answers),
            r.exclusion,
        )
        for number, r in enumerate(respondents, start=1)
    ]


def public_archive_of(
    ballots: Iterable[CountedBallot | Counted], consultation_id: str, min_cell: int
) -> list[Respondent]:
    """The pseudonymised archive as published: in the order of `pseudonymous_order`, anonymised."""
    ordered = sorted(
        map(counted_of, ballots), key=lambda b: (pseudonymous_order(consultation_id, b.response_id), b.response_id)
    )
    return anonymised(
        [Respondent(0, b.profile, b.received_at.date(), b.submissions, b.answers, b.exclusion) for b in ordered],
        min_cell,
    )


@dataclass
class _Row:
    dataset_id: str | None
    respondents: int = 0
    priorities: Counter[Priority] = field(default_factory=Counter)
    improvements: Counter[ImprovementKind] = field(default_factory=Counter)
    profiles: Counter[Profile] = field(default_factory=Counter)
    profile_priorities: Counter[tuple[Profile, Priority]] = field(default_factory=Counter)
    titles: Counter[str] = field(default_factory=Counter)


def compute_rankings(
    archive: Iterable[Respondent], datasets: Mapping[str, DatasetRef], weights: Mapping[Priority, int]
) -> dict[RankingKind, list[RankingRow]]:
    """The three rankings of DESIGN §4, from the archive alone."""
    rows: dict[RankingKind, dict[str, _Row]] = {kind: {} for kind in RankingKind}
    for respondent in archive:
        for answer in respondent.answers:
            row = rows[answer.ranking].get(answer.key)
            if row is None:
                row = rows[answer.ranking][answer.key] = _Row(answer.dataset_id)
            row.respondents += 1
            row.profiles[respondent.profile] += 1
            if answer.priority is not None:
                row.priorities[answer.priority] += 1
                row.profile_priorities[(respondent.profile, answer.priority)] += 1
            if answer.improvements:
                row.improvements.update(answer.improvements)
            if answer.title:
                row.titles[answer.title] += 1

    def score(kind: RankingKind, row: _Row, profile: Profile | None = None) -> int:
        if kind is not RankingKind.OPEN:
            return row.respondents if profile is None else row.profiles[profile]
        if profile is None:
            return sum(w * row.priorities[p] for p, w in weights.items())
        return sum(w * row.profile_priorities[(profile, p)] for p, w in weights.items())

    def title(row: _Row) -> str | None:
        dataset = datasets.get(row.dataset_id) if row.dataset_id else None
        if dataset is not None:
            return dataset.title
        if row.titles:  # the title most respondents typed; among equals, the first alphabetically
            return min(row.titles.items(), key=lambda item: (-item[1], item[0]))[0]
        return None

    def status(row: _Row) -> DatasetStatus | None:
        dataset = datasets.get(row.dataset_id) if row.dataset_id else None
        return dataset.status if dataset else None

    ranked: dict[RankingKind, list[RankingRow]] = {}
    for kind, by_key in rows.items():
        order = sorted(by_key.items(), key=lambda item: (-score(kind, item[1]), -item[1].respondents, item[0]))
        ranked[kind] = [
            RankingRow(
                rank=position,
                key=key,
                dataset_id=row.dataset_id,
                title=title(row),
                status=status(row),
                score=score(kind, row),
                respondents=row.respondents,
                by_profile={
                    p: Tally(score=score(kind, row, p), respondents=row.profiles[p]) for p in Profile if row.profiles[p]
                },
                by_priority={p: row.priorities[p] for p in Priority if row.priorities[p]},
                by_improvement={k: row.improvements[k] for k in ImprovementKind if row.improvements[k]},
            )
            for position, (key, row) in enumerate(order, start=1)
        ]
    return ranked


def results_of(
    event_id: str,
    consultation: Consultation,
    respondents: int,
    method: Method,
    rankings: Mapping[RankingKind, list[RankingRow]],
    excluded_respondents: int = 0,
    exclusions: Sequence[ExclusionInForce] = (),
) -> ResultsPublished:
    return ResultsPublished(
        event_id=event_id,
        occurred_at=consultation.frozen_at,
        consultation_id=consultation.consultation_id,
        title=consultation.title,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        frozen_at=consultation.frozen_at,
        respondents=respondents,
        excluded_respondents=excluded_respondents,
        exclusions=list(exclusions),
        method=method.ranking_method,
        open=rankings[RankingKind.OPEN],
        improve=rankings[RankingKind.IMPROVE],
        suggestions=rankings[RankingKind.SUGGESTIONS],
    )


def shown(value: int, min_cell: int) -> bool:
    """Whether a breakdown cell may be published: zero, or at least `min_cell`."""
    return not 0 < value < min_cell


def suppressed(rows: Iterable[RankingRow], min_cell: int) -> list[RankingRow]:
    """The rows with every breakdown cell between 1 and `min_cell - 1` left out (totals kept); a
    profile's score goes with its respondents."""
    return [
        row.model_copy(
            update={
                "by_profile": {p: t for p, t in row.by_profile.items() if shown(t.respondents, min_cell)},
                "by_priority": {p: n for p, n in row.by_priority.items() if shown(n, min_cell)},
                "by_improvement": {k: n for k, n in row.by_improvement.items() if shown(n, min_cell)},
            }
        )
        for row in rows
    ]


def disagreements(
    ours: Mapping[RankingKind, Sequence[RankingRow]], theirs: Mapping[RankingKind, Sequence[RankingRow]]
) -> list[str]:
    """Where two computations of the rankings differ in what is counted (titles aside)."""

    def counted(row: RankingRow) -> tuple[Any, ...]:
        return (
            row.rank,
            row.key,
            row.dataset_id,
            row.score,
            row.respondents,
            row.by_profile,
            row.by_priority,
            row.by_improvement,
        )

    found = []
    for kind in RankingKind:
        a, b = [counted(r) for r in ours.get(kind, [])], [counted(r) for r in theirs.get(kind, [])]
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            found.append(f"{kind.value}: {len(a)} rows against {len(b)}, first difference at row {first + 1}")
    return found


def with_uncertainty(
    rankings: Mapping[RankingKind, list[RankingRow]],
    respondents: Sequence[Respondent],
    consultation_id: str,
    method: Method,
) -> dict[RankingKind, list[RankingRow]]:
    """The rankings with each row's rank interval and tie group, over the counted respondents in archive
    order, and the ranks of "to open" under the alternative weightings."""
    answers = [[(a.ranking, a.key, a.priority) for a in r.answers] for r in respondents]
    resamples = method.resamples or 0
    intervals = intervals_of(answers, method.weights, resamples, seed_of(consultation_id), method.level)
    alternatives = alternative_ranks(answers)
    return {
        kind: with_intervals(rows, intervals[kind], alternatives if kind is RankingKind.OPEN else None)
        for kind, rows in rankings.items()
    }


def published_rankings(
    event_id: str,
    consultation: Consultation,
    archive: Sequence[Respondent],
    datasets: Mapping[str, DatasetRef],
    method: Method,
    exclusions: Sequence[ExclusionInForce] | None,
) -> tuple[ResultsPublished, dict[RankingKind, list[RankingRow]]]:
    """The published results and their rankings in full detail: ranked from the respondents of the public
    archive not set aside for one of `exclusions`, with their rank intervals (unless `method.resamples` is
    None: results published before intervals existed); the results with small breakdown cells suppressed."""
    published = published_exclusions(exclusions or ())
    ranked = counted(archive, published)
    rankings = compute_rankings(ranked, datasets, method.weights)
    uncertain = method.resamples is not None
    if uncertain:
        rankings = with_uncertainty(rankings, ranked, consultation.consultation_id, method)
    shown_rankings = {kind: suppressed(rows, method.min_cell) for kind, rows in rankings.items()}
    results = results_of(
        event_id, consultation, len(ranked), method, shown_rankings, len(archive) - len(ranked), published
    )
    if uncertain:
        bootstrap = method_of(method.resamples or 0, seed_of(consultation.consultation_id), method.level)
        results = results.model_copy(update={"method": results.method.model_copy(update={"uncertainty": bootstrap})})
    return results, rankings


def published_results(results: ResultsPublished, archive: Sequence[Respondent], method: Method) -> ResultsPublished:
    """The results as published: those frozen at the close, ranked again from the public archive, small
    breakdown cells left out, the clusters set aside as published. Totals are the same; among exact ties
    of suggestions, an opaque key may order rows differently from the frozen ranking. Without the rank
    intervals (for the checks and the commitments; `render_files` computes them, once)."""
    return published_rankings(
        results.event_id,
        consultation_of(results),
        archive,
        datasets_of(results),
        replace(method, resamples=None),
        results.exclusions,
    )[0]


def same_totals(frozen: ResultsPublished, published: ResultsPublished) -> list[str]:
    """Where the published rankings do not count what the frozen ones do (score and respondents per row)."""

    def totals(rows: Sequence[RankingRow]) -> list[tuple[int, int]]:
        return sorted((row.score, row.respondents) for row in rows)

    return [
        f"{kind}: the published ranking does not count what the frozen one does"
        for kind in ("open", "improve", "suggestions")
        if totals(getattr(frozen, kind)) != totals(getattr(published, kind))
    ] + [
        f"{name} differ"
        for name in ("respondents", "excluded_respondents")
        if getattr(frozen, name) != getattr(published, name)
    ]


def datasets_of(results: ResultsPublished) -> dict[str, DatasetRef]:
    """The catalogue as the results show it: every ranked dataset with its title and status."""
    datasets = {}
    for row in [*results.open, *results.improve, *results.suggestions]:
        if row.dataset_id and row.title is not None and row.status is not None:
            datasets[row.dataset_id] = DatasetRef(row.dataset_id, row.title, row.status)
    return datasets


def consultation_of(results: ResultsPublished) -> Consultation:
    return Consultation(results.consultation_id, results.title, results.opens_at, results.closes_at, results.frozen_at)

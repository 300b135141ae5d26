"""Rankings raw and filtered: staff's exclusions move respondents' ballots in and out of the excluded
tallies, and the filtered ranking equals the ranking recomputed over the respondents kept."""

import random
from collections import Counter, defaultdict

import pytest

from services.scoring.domain import (
    DEFAULT_WEIGHTS,
    Ballot,
    BatchPlan,
    Cluster,
    ExclusionPlan,
    RowId,
    StoredRow,
    TallyField,
    attribution,
    cluster_of,
    contributions,
    counted_ballot,
    counts,
    exclusions_in_force,
    filtered,
    forgotten,
    plan_batch,
    plan_exclusions,
    rank,
    respondents_touched,
)
from shared.contracts import (
    Decision,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    ResponseEnriched,
)
from tests.scoring_builders import decided, enriched


class InMemoryScoring:
    """Applies both kinds of plan the way the repository does: ballots, raw and excluded tallies,
    clusters and each respondent's attribution."""

    def __init__(self) -> None:
        self.ballots: dict[tuple[str, str], Ballot] = {}
        self.rows: dict[RowId, Counter[TallyField]] = defaultdict(Counter)
        self.excluded_rows: dict[RowId, Counter[TallyField]] = defaultdict(Counter)
        self.respondents: Counter[str] = Counter()
        self.excluded_respondents: Counter[str] = Counter()
        self.clusters: dict[tuple[str, str], Cluster] = {}
        self.attributed: dict[tuple[str, str], str] = {}

    def score(self, batch: list[ResponseEnriched]) -> BatchPlan:
        plan = plan_batch(batch, self.ballots, set(self.attributed))
        for old, new in plan.ballots:
            key = (new.consultation_id, new.respondent_key)
            assert self.ballots.get(key) == old
            self.ballots[key] = new
        for row_id, change in plan.rows.items():
            self.rows[row_id].update(change.counts)
        for row_id, change in plan.excluded_rows.items():
            self.excluded_rows[row_id].update(change.counts)
        for cid, totals in plan.consultations.items():
            self.respondents[cid] += totals.respondents
            self.excluded_respondents[cid] += totals.excluded_respondents
        return plan

    def decide(self, decisions: list[Cluster]) -> ExclusionPlan:
        cids = {d.consultation_id for d in decisions}
        clusters = {k: c for k, c in self.clusters.items() if k[0] in cids}
        touched = respondents_touched(decisions, clusters)
        plan = plan_exclusions(
            decisions,
            clusters,
            {k: self.attributed[k] for k in touched if k in self.attributed},
            {k: self.ballots[k] for k in touched if k in self.ballots},
        )
        for cluster in plan.clusters:
            self.clusters[cluster.key] = cluster
        for key, cluster_id in plan.respondents.items():
            if cluster_id is None:
                del self.attributed[key]
            else:
                self.attributed[key] = cluster_id
        for row_id, change in plan.excluded_rows.items():
            self.excluded_rows[row_id].update(change.counts)
        for cid, n in plan.excluded_respondents.items():
            self.excluded_respondents[cid] += n
        return plan

    def stored(self, rows: dict[RowId, Counter[TallyField]], kind: RankingKind) -> list[StoredRow]:
        return [StoredRow(r.key, r.key, None, dict(c)) for r, c in rows.items() if r.kind is kind]

    def ranking(self, kind: RankingKind, view: str, profile: Profile | None = None) -> list[tuple[str, int, int]]:
        rows = self.stored(self.rows, kind)
        if view == "filtered":
            rows = filtered(rows, self.stored(self.excluded_rows, kind))
        return [(r.key, r.score, r.respondents) for r in rank(kind, rows, DEFAULT_WEIGHTS, profile)]


def recomputed(ballots: list[Ballot], kind: RankingKind, profile: Profile | None = None) -> list[tuple[str, int, int]]:
    """The ranking computed from scratch over these ballots."""
    rows: dict[RowId, Counter[TallyField]] = defaultdict(Counter)
    for ballot in ballots:
        for row_id, change in contributions(ballot).items():
            rows[row_id].update(change.counts)
    stored = [StoredRow(r.key, r.key, None, dict(c)) for r, c in rows.items() if r.kind is kind]
    return [(r.key, r.score, r.respondents) for r in rank(kind, stored, DEFAULT_WEIGHTS, profile)]


def test_an_excluded_cluster_leaves_the_filtered_ranking_and_stays_in_the_raw_one() -> None:
    store = InMemoryScoring()
    store.score(
        [
            enriched("r1", "honest", 1, opens={"d1": Priority.USEFUL}),
            enriched("r2", "bot1", 2, opens={"d2": Priority.ESSENTIAL}),
            enriched("r3", "bot2", 3, opens={"d2": Priority.ESSENTIAL, "d1": Priority.USEFUL}),
        ]
    )
    assert store.ranking(RankingKind.OPEN, "raw") == [("d2", 6, 2), ("d1", 2, 2)]
    store.decide([cluster_of(decided("k1", Decision.EXCLUDE, ["bot1", "bot2", "not-yet"]), 0)])
    assert store.ranking(RankingKind.OPEN, "filtered") == [("d1", 1, 1)]  # d2 had only them: gone
    assert store.ranking(RankingKind.OPEN, "raw") == [("d2", 6, 2), ("d1", 2, 2)]
    assert store.excluded_respondents["c1"] == 2  # "not-yet" has no ballot: not counted
    # A later ballot of a respondent set aside counts as excluded when it arrives.
    store.score([enriched("r4", "not-yet", 4, opens={"d3": Priority.IMPORTANT})])
    assert store.ranking(RankingKind.OPEN, "filtered") == [("d1", 1, 1)]
    assert store.excluded_respondents["c1"] == 3
    store.decide([cluster_of(decided("k1", Decision.CLEAR, ["bot1", "bot2", "not-yet"]), 1)])
    assert store.ranking(RankingKind.OPEN, "filtered") == store.ranking(RankingKind.OPEN, "raw")
    assert store.excluded_respondents["c1"] == 0
    assert store.attributed == {}


def test_a_respondent_is_attributed_to_the_smallest_excluding_cluster_and_out_while_any_excludes() -> None:
    store = InMemoryScoring()
    store.score([enriched("r1", "p", 1, opens={"d1": Priority.USEFUL})])
    store.decide([cluster_of(decided("b", Decision.EXCLUDE, ["p"]), 0)])
    store.decide([cluster_of(decided("a", Decision.EXCLUDE, ["p"]), 1)])
    assert store.attributed == {("c1", "p"): "a"}
    assert store.excluded_respondents["c1"] == 1
    store.decide([cluster_of(decided("a", Decision.CLEAR, ["p"]), 2)])
    assert store.attributed == {("c1", "p"): "b"}
    assert store.ranking(RankingKind.OPEN, "filtered") == []
    store.decide([forgotten("c1", "b", 3)])
    assert store.attributed == {}
    assert store.ranking(RankingKind.OPEN, "filtered") == [("d1", 1, 1)]


def test_a_redelivered_or_older_decision_changes_nothing() -> None:
    store = InMemoryScoring()
    store.score([enriched("r1", "p", 1, opens={"d1": Priority.USEFUL})])
    exclude, clear = (
        cluster_of(decided("k", Decision.EXCLUDE, ["p"]), 5),
        cluster_of(decided("k", Decision.CLEAR, ["p"]), 6),
    )
    store.decide([exclude, clear, exclude])  # within a batch, the latest holds whatever the order
    assert store.attributed == {}
    assert store.decide([exclude]).is_empty
    assert store.decide([clear]).is_empty
    assert store.excluded_rows == {} or all(not any(c.values()) for c in store.excluded_rows.values())


def test_amending_or_withdrawing_an_excluded_ballot_moves_the_excluded_tallies_with_it() -> None:
    store = InMemoryScoring()
    store.score([enriched("r1", "p", 1, opens={"d1": Priority.USEFUL}, improves={"o1": [ImprovementKind.LICENCE]})])
    store.decide([cluster_of(decided("k", Decision.EXCLUDE, ["p"]), 0)])
    store.score([enriched("r2", "p", 2, opens={"d2": Priority.ESSENTIAL})])
    assert store.ranking(RankingKind.OPEN, "raw") == [("d2", 3, 1)]
    assert store.ranking(RankingKind.OPEN, "filtered") == []
    withdrawal = enriched("r3", "p", 3)
    store.score(
        [withdrawal.model_copy(update={"response": withdrawal.response.model_copy(update={"withdrawn": True})})]
    )
    assert store.excluded_respondents["c1"] == 0
    assert store.respondents["c1"] == 0
    store.decide([cluster_of(decided("k", Decision.CLEAR, ["p"]), 1)])
    assert store.excluded_respondents["c1"] == 0
    assert store.ranking(RankingKind.OPEN, "filtered") == []


def test_the_archive_names_the_cluster_a_ballot_is_set_aside_for() -> None:
    plan = plan_batch([enriched("r1", "p", 1, opens={"d1": Priority.USEFUL})], {})
    [(_, ballot)] = plan.ballots
    assert counted_ballot(ballot).exclusion is None
    assert counted_ballot(ballot, "k").exclusion == "k"


@pytest.mark.parametrize("seed", range(8))
def test_filtered_rankings_equal_the_rankings_of_the_respondents_kept_whatever_the_order(seed: int) -> None:
    rng = random.Random(seed)
    datasets = [f"d{i}" for i in range(5)]
    respondents = [f"p{i}" for i in range(25)]
    clusters = ["k1", "k2", "k3", "k4"]
    submissions = []
    for n in range(150):
        submission = enriched(
            f"r{n}",
            rng.choice(respondents),
            rng.uniform(0, 1000),
            opens={d: rng.choice(list(Priority)) for d in rng.sample(datasets, rng.randrange(0, 3))},
            improves={d: rng.sample(list(ImprovementKind), 1) for d in rng.sample(datasets, rng.randrange(0, 2))},
            suggestions=rng.sample(["Fanfares", "Kiosques"], rng.randrange(0, 2)),
            profile=rng.choice(list(Profile)),
        )
        if rng.random() < 0.1:
            submission = submission.model_copy(
                update={"response": submission.response.model_copy(update={"withdrawn": True})}
            )
        submissions.append(submission)
    decisions = [
        cluster_of(
            decided(rng.choice(clusters), rng.choice(list(Decision)), rng.sample(respondents, rng.randrange(1, 8))),
            position,
        )
        for position in range(30)
    ]
    # Responses in any order, a few twice; decisions in topic order, some redelivered later; interleaved.
    stream: list[ResponseEnriched | Cluster] = list(decisions)
    for again in sorted(rng.sample(range(len(stream)), 5)):
        stream.insert(rng.randrange(again, len(stream) + 1), rng.choice(decisions[: again + 1]))
    for submission in rng.sample(submissions, len(submissions)) + rng.sample(submissions, 20):
        stream.insert(rng.randrange(len(stream) + 1), submission)
    store = InMemoryScoring()
    while stream:
        size = rng.randrange(1, 12)
        batch, stream = stream[:size], stream[size:]
        store.score([e for e in batch if isinstance(e, ResponseEnriched)])
        store.decide([e for e in batch if isinstance(e, Cluster)])
    latest: dict[str, Cluster] = {}
    for decision in decisions:
        latest[decision.cluster_id] = decision
    set_aside = attribution(latest.values())
    assert store.attributed == set_aside
    ballots = list(store.ballots.values())
    kept = [b for b in ballots if ("c1", b.respondent_key) not in set_aside]
    for kind in RankingKind:
        assert store.ranking(kind, "raw") == recomputed(ballots, kind)
        assert store.ranking(kind, "filtered") == recomputed(kept, kind)
        assert store.ranking(kind, "filtered", Profile.COMPANY) == recomputed(kept, kind, Profile.COMPANY)
    assert store.respondents["c1"] == sum(counts(b) for b in ballots)
    assert store.excluded_respondents["c1"] == sum(counts(b) for b in ballots if ("c1", b.respondent_key) in set_aside)


def test_the_exclusions_in_force_count_the_counted_ballots_attributed_to_each_cluster() -> None:
    store = InMemoryScoring()
    store.score([enriched(f"r{n}", f"p{n}", n, opens={"d1": Priority.USEFUL}) for n in range(4)])
    withdrawal = enriched("w", "p3", 10)
    store.score(
        [withdrawal.model_copy(update={"response": withdrawal.response.model_copy(update={"withdrawn": True})})]
    )
    store.decide(
        [
            cluster_of(decided("b", Decision.EXCLUDE, ["p0", "p1", "p3", "nobody"]), 0),
            cluster_of(decided("a", Decision.EXCLUDE, ["p1"]), 1),
            cluster_of(decided("c", Decision.CLEAR, ["p2"]), 2),
        ]
    )
    attributed = {key: cluster for (_, key), cluster in store.attributed.items()}
    in_force = exclusions_in_force(store.clusters.values(), attributed, store.ballots.values())
    assert [(e.cluster_id, e.respondents) for e in in_force] == [("a", 1), ("b", 1)]  # p3 withdrew
    assert in_force[0].reason == "Rafale de réponses identiques depuis un même réseau."
    assert store.excluded_respondents["c1"] == 2

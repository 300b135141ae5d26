import random
from collections import Counter

import pytest

from services.scoring.domain import (
    DEFAULT_WEIGHTS,
    RowId,
    StoredRow,
    ballot_change,
    fold,
    plan_batch,
    rank,
)
from shared.contracts import (
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
    ResponseEnriched,
)
from tests.scoring_builders import InMemoryRankings, enriched


def test_open_score_is_the_sum_of_priority_weights_over_respondents() -> None:
    store = InMemoryRankings()
    store.apply(
        plan_batch(
            [
                enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL, "d2": Priority.USEFUL}),
                enriched("r2", "b", 2, opens={"d1": Priority.IMPORTANT}, profile=Profile.JOURNALIST),
            ],
            {},
        )
    )
    ranking = rank(RankingKind.OPEN, store.stored_rows(RankingKind.OPEN), DEFAULT_WEIGHTS)
    assert [(r.key, r.score, r.respondents) for r in ranking] == [("d1", 5, 2), ("d2", 1, 1)]
    assert ranking[0].by_profile[Profile.RESEARCHER].score == 3
    assert ranking[0].by_profile[Profile.JOURNALIST].score == 2
    assert store.respondents["c1"] == 2


def test_an_amendment_withdraws_the_earlier_submission_from_every_ranking() -> None:
    first = enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL}, improves={"o1": [ImprovementKind.LICENCE]})
    amended = enriched("r2", "a", 5, opens={"d2": Priority.USEFUL}, suggestions=["Registre des orgues"])
    store = InMemoryRankings()
    store.apply(plan_batch([first], {}))
    store.apply(plan_batch([amended], store.ballots))
    assert [(r.key, r.score) for r in rank(RankingKind.OPEN, store.stored_rows(RankingKind.OPEN), DEFAULT_WEIGHTS)] == [
        ("d2", 1)
    ]
    assert rank(RankingKind.IMPROVE, store.stored_rows(RankingKind.IMPROVE), DEFAULT_WEIGHTS) == []
    assert len(rank(RankingKind.SUGGESTIONS, store.stored_rows(RankingKind.SUGGESTIONS), DEFAULT_WEIGHTS)) == 1
    assert store.respondents["c1"] == 1


def test_a_redelivered_or_retried_submission_changes_nothing() -> None:
    submission = enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})
    store = InMemoryRankings()
    store.apply(plan_batch([submission, submission], {}))
    again = plan_batch([submission], store.ballots)
    assert again.ballots == []
    assert again.rows == {}
    assert store.rows[RowId("c1", RankingKind.OPEN, "d1")][("priority", "essential")] == 1


def test_an_older_submission_arriving_late_does_not_replace_the_newer_one() -> None:
    newer = enriched("r2", "a", 10, opens={"d2": Priority.ESSENTIAL})
    older = enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL})
    ballot = fold(fold(None, [newer]), [older])
    assert ballot is not None
    assert ballot.response_id == "r2"
    assert ballot.seen == {"r1", "r2"}
    # ...and a retry of the older one, after the amendment, is still ignored.
    assert fold(ballot, [older]) == ballot


def test_ballot_change_keeps_only_rows_that_move() -> None:
    old = fold(None, [enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL, "d2": Priority.USEFUL})])
    new = fold(old, [enriched("r2", "a", 2, opens={"d1": Priority.ESSENTIAL, "d2": Priority.IMPORTANT})])
    changes = ballot_change(old, new)
    assert list(changes) == [RowId("c1", RankingKind.OPEN, "d2")]
    counts = changes[RowId("c1", RankingKind.OPEN, "d2")].counts
    assert counts[("priority", "useful")] == -1
    assert counts[("priority", "important")] == 1


def test_ties_break_on_respondents_then_dataset_id() -> None:
    rows = [
        StoredRow("b", "b", None, {("respondents",): 1, ("priority", "essential"): 1}),
        StoredRow("a", "a", None, {("respondents",): 1, ("priority", "essential"): 1}),
        StoredRow("c", "c", None, {("respondents",): 3, ("priority", "useful"): 3}),
    ]
    assert [r.key for r in rank(RankingKind.OPEN, rows, DEFAULT_WEIGHTS)] == ["c", "a", "b"]
    assert [r.rank for r in rank(RankingKind.OPEN, rows, DEFAULT_WEIGHTS)] == [1, 2, 3]


def test_weights_are_applied_when_read() -> None:
    rows = [
        StoredRow("x", "x", None, {("respondents",): 2, ("priority", "useful"): 2}),
        StoredRow("y", "y", None, {("respondents",): 1, ("priority", "essential"): 1}),
    ]
    flat = {Priority.ESSENTIAL: 1, Priority.IMPORTANT: 1, Priority.USEFUL: 1}
    assert [r.key for r in rank(RankingKind.OPEN, rows, DEFAULT_WEIGHTS)] == ["y", "x"]
    assert [r.key for r in rank(RankingKind.OPEN, rows, flat)] == ["x", "y"]


@pytest.mark.parametrize("seed", range(5))
def test_any_delivery_order_batching_and_duplication_gives_the_hand_computed_ranking(seed: int) -> None:
    rng = random.Random(seed)
    datasets = [f"d{i}" for i in range(6)]
    submissions = []
    for n in range(120):
        respondent = f"p{rng.randrange(30)}"
        opens = {d: rng.choice(list(Priority)) for d in rng.sample(datasets, rng.randrange(0, 3))}
        submissions.append(
            enriched(
                f"r{n}",
                respondent,
                rng.uniform(0, 1000),
                opens=opens,
                profile=rng.choice(list(Profile)),
            )
        )
    # Ground truth: each respondent's latest submission, summed by hand.
    latest: dict[str, ResponseEnriched] = {}
    for s in submissions:
        current = latest.get(s.response.respondent_key)
        if current is None or s.response.received_at > current.response.received_at:
            latest[s.response.respondent_key] = s
    expected: Counter[str] = Counter()
    for s in latest.values():
        for request in s.response.open_requests:
            expected[request.dataset_id] += DEFAULT_WEIGHTS[request.priority]
    # Delivery in any order, a third of the messages twice, in batches of random sizes.
    stream = submissions + rng.sample(submissions, 40)
    rng.shuffle(stream)
    store = InMemoryRankings()
    while stream:
        size = rng.randrange(1, 25)
        batch, stream = stream[:size], stream[size:]
        store.apply(plan_batch(batch, store.ballots))
    got = {r.key: r.score for r in rank(RankingKind.OPEN, store.stored_rows(RankingKind.OPEN), DEFAULT_WEIGHTS)}
    assert got == {d: score for d, score in expected.items() if score}
    assert store.respondents["c1"] == len(latest)


def test_a_withdrawal_takes_the_respondent_out_of_every_ranking_and_the_count() -> None:
    first = enriched("r1", "a", 1, opens={"d1": Priority.ESSENTIAL}, suggestions=["Fanfares"])
    plan = plan_batch([first], {})
    [(_, ballot)] = plan.ballots
    withdrawal = enriched("r2", "a", 2)
    withdrawal = withdrawal.model_copy(update={"response": withdrawal.response.model_copy(update={"withdrawn": True})})
    after = plan_batch([withdrawal], {("c1", "a"): ballot})
    assert after.consultations["c1"].respondents == -1
    assert all(sum(change.counts.values()) < 0 for change in after.rows.values())
    [(_, gone)] = after.ballots
    again = plan_batch([enriched("r3", "a", 3, opens={"d2": Priority.USEFUL})], {("c1", "a"): gone})
    assert again.consultations["c1"].respondents == 1

"""The publisher's archive folded from the log: the same ballots and exclusions as scoring's, whatever the
batches, redeliveries and amendments; late responses, withdrawals and tombstones as scoring treats them."""

import random
from datetime import timedelta

from services.publisher.archive import counted_of
from services.publisher.domain import caught_up
from services.publisher.ledger import Ledger, Record
from shared.ballots import Ballot, attribution, cluster_of, counted_ballot, exclusions_in_force, fold
from shared.contracts import Decision, ExclusionDecided, Priority, ResponseEnriched
from shared.topics import EXCLUSIONS, RESPONSES_ENRICHED
from tests.service.builders import CONSULTATION, decision, enriched

WINDOW = {"c1": CONSULTATION}.get


def response_record(message: ResponseEnriched, offset: int, partition: int = 0) -> Record:
    key = message.response.respondent_key.encode()
    return Record(RESPONSES_ENRICHED, partition, offset, key, message.model_dump_json().encode())


def decision_record(decided: ExclusionDecided | None, offset: int, key: str = "") -> Record:
    value = None if decided is None else decided.model_dump_json().encode()
    return Record(EXCLUSIONS, 0, offset, (decided.key if decided else key).encode(), value)


def stream(seed: int) -> list[ResponseEnriched]:
    """Responses of 40 respondents, some amended, some withdrawn, some redelivered, out of order."""
    rng = random.Random(seed)
    datasets = [f"d{i}" for i in range(8)]
    messages = []
    for n in range(120):
        respondent = f"p{rng.randrange(40)}"
        opens = {d: rng.choice(list(Priority)) for d in rng.sample(datasets, rng.randint(1, 3))}
        messages.append(enriched(f"r{n}", respondent, rng.uniform(0, 3600), opens, withdrawn=rng.random() < 0.05))
    messages += rng.sample(messages, 15)  # redelivered, retried POSTs
    rng.shuffle(messages)
    return messages


async def test_the_archive_holds_the_ballots_scoring_folds_whatever_the_batches() -> None:
    for seed in range(5):
        messages = stream(seed)
        expected: dict[str, Ballot | None] = {}
        for message in messages:
            key = message.response.respondent_key
            expected[key] = fold(expected.get(key), [message])
        ledger = Ledger(WINDOW)
        rng = random.Random(seed)
        start = 0
        while start < len(messages):
            size = rng.randint(1, 30)
            ledger.fold(response_record(m, start + i) for i, m in enumerate(messages[start : start + size]))
            start += size
        ballots = await ledger.ballots("c1")
        counted = sorted(
            (counted_of(counted_ballot(b)) for b in expected.values() if b is not None and not b.withdrawn),
            key=lambda b: b.response_id,
        )
        assert sorted(ballots, key=lambda b: b.response_id) == counted
        assert ledger.positions(RESPONSES_ENRICHED) == {(RESPONSES_ENRICHED, 0): len(messages)}


async def test_responses_after_the_close_are_left_out_as_scoring_leaves_them_out() -> None:
    ledger = Ledger(WINDOW)
    after = (CONSULTATION.closes_at - CONSULTATION.opens_at + timedelta(seconds=1)).total_seconds()
    folded = ledger.fold(
        [
            response_record(enriched("r1", "p1", 10, {"d1": Priority.ESSENTIAL}), 0),
            response_record(enriched("r2", "p1", after, {"d2": Priority.USEFUL}), 1),  # an amendment too late
            response_record(enriched("r3", "p2", after, {"d2": Priority.USEFUL}), 2),
        ]
    )
    assert (folded.responses, folded.late) == (1, 2)
    assert [(b.response_id, [a.key for a in b.answers]) for b in await ledger.ballots("c1")] == [("r1", ["d1"])]


async def test_exclusions_follow_the_latest_decision_on_each_cluster_tombstones_included() -> None:
    ledger = Ledger(WINDOW)
    ledger.fold(response_record(enriched(f"r{n}", f"p{n}", n, {"d1": Priority.USEFUL}), n) for n in range(6))
    a, b = decision("a", ["p0", "p1", "p2"]), decision("b", ["p2", "p3"])
    ledger.fold([decision_record(a, 0), decision_record(b, 1)])
    marks = {x.response_id: x.exclusion for x in await ledger.ballots("c1")}
    # p2 is in both: attributed to the smallest cluster id, as scoring attributes.
    assert marks == {"r0": "a", "r1": "a", "r2": "a", "r3": "b", "r4": "", "r5": ""}
    clusters = [cluster_of(a, 0), cluster_of(b, 1)]
    attributed = {key: cid for (_, key), cid in attribution(clusters).items()}
    expected = exclusions_in_force(clusters, attributed, [])
    assert [(e.cluster_id, e.respondents) for e in await ledger.exclusions("c1")] == [("a", 3), ("b", 1)]
    assert [e.cluster_id for e in expected] == ["a", "b"]

    cleared = decision("a", ["p0", "p1", "p2"], Decision.CLEAR)
    ledger.fold([decision_record(cleared, 2), decision_record(a, 0)])  # a redelivered older decision: stale
    marks = {x.response_id: x.exclusion for x in await ledger.ballots("c1")}
    assert marks == {"r0": "", "r1": "", "r2": "b", "r3": "b", "r4": "", "r5": ""}
    ledger.fold([decision_record(None, 3, key="c1:b")])  # b's decision deleted from the topic
    assert all(x.exclusion == "" for x in await ledger.ballots("c1"))
    assert await ledger.exclusions("c1") == []


def test_unreadable_records_are_reported_and_skipped_but_read_past() -> None:
    ledger = Ledger(WINDOW)
    folded = ledger.fold(
        [
            Record(RESPONSES_ENRICHED, 2, 7, b"k", b"{not json"),
            Record(EXCLUSIONS, 0, 4, b"no-separator", None),
            response_record(enriched("r1", "p1", 10, {"d1": Priority.ESSENTIAL}), 8, partition=2),
        ]
    )
    assert (folded.responses, len(folded.invalid)) == (1, 2)
    assert caught_up({(RESPONSES_ENRICHED, 2): 9}, ledger.positions(RESPONSES_ENRICHED))
    assert caught_up({(EXCLUSIONS, 0): 5}, ledger.positions(EXCLUSIONS))
    assert not caught_up({(RESPONSES_ENRICHED, 2): 10}, ledger.positions(RESPONSES_ENRICHED))
    # The consumer's position passes transaction markers, which no record shows.
    ledger.advance(RESPONSES_ENRICHED, 2, 10)
    ledger.advance(RESPONSES_ENRICHED, 2, 3)  # never backwards
    assert ledger.positions(RESPONSES_ENRICHED) == {(RESPONSES_ENRICHED, 2): 10}

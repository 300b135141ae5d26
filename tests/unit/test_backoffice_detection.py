"""Stuffing detection as pure functions: attacks flagged, honest respondents left alone, ids stable."""

import random
from datetime import timedelta

from benchmarks.stuffing_detection import START, flagged_shares, population, respondents_of
from services.backoffice.detection import DEFAULT_SETTINGS, Respondent, detect, jaccard
from shared.contracts import Signal

TO_OPEN = [f"ouvrir-{n:03d}" for n in range(120)]
TO_IMPROVE = [f"ameliorer-{n:03d}" for n in range(60)]


def respondent(n: int, seconds: float, network: str, datasets: set[str], fill: float | None = None) -> Respondent:
    at = START + timedelta(seconds=seconds)
    return Respondent(f"k{n:04d}", f"r{n}", at, at, network, fill, frozenset(datasets))


def background(n: int = 300) -> list[Respondent]:
    """Varied respondents spread over the day before: the rest of the consultation an answer set's
    frequency in a window is compared with."""
    rng = random.Random(n)
    return [
        respondent(9000 + i, -86400 + i * 86400 / n, f"home-{i}", {f"open:{d}" for d in rng.sample(TO_OPEN, 3)})
        for i in range(n)
    ]


def test_both_attacks_are_flagged_and_honest_respondents_are_not() -> None:
    for seed, span_hours in ((17, 24.0), (18, 1.0), (19, 1.0)):
        answers, _ = population(random.Random(seed), TO_OPEN, TO_IMPROVE, 2000, span_hours * 3600)
        shares = flagged_shares(answers, DEFAULT_SETTINGS)
        assert shares["attack-a"] >= 0.95, (seed, shares)
        assert shares["attack-b"] >= 0.95, (seed, shares)
        assert shares["honest"] <= 0.01, (seed, shares)


def test_a_shared_network_of_honest_respondents_is_no_burst_but_a_scripted_one_is() -> None:
    honest = [respondent(n, n * 120, "univ", {f"open:d{n}"}) for n in range(30)]  # 30 in an hour
    scripted = [respondent(100 + n, 5000 + n * 0.2, "script", {f"open:x{n}"}) for n in range(30)]
    clusters = detect(honest + scripted)
    assert [c.signals for c in clusters] == [{Signal.NETWORK_BURST}]
    assert clusters[0].keys == {r.key for r in scripted}
    assert clusters[0].networks() == 1


def test_the_same_answers_from_many_networks_are_one_cluster_pushing_their_datasets() -> None:
    same = [respondent(n, n * 20, f"net-{n}", {"open:pushed", "open:other"}) for n in range(25)]
    varied = [respondent(100 + n, n * 20 + 7, f"own-{n}", {f"open:d{n}", "open:other"}) for n in range(25)]
    clusters = detect(background() + same + varied)
    assert len(clusters) == 1
    assert clusters[0].signals == {Signal.SAME_ANSWERS}
    assert clusters[0].keys == {r.key for r in same}
    assert clusters[0].pushed() == ["open:other", "open:pushed"]


def test_a_popular_answer_set_common_all_along_is_no_cluster() -> None:
    """Many honest respondents give the consultation's most popular answer at a busy hour: as common in
    that hour as in the rest of the consultation, it is no cluster."""
    rng = random.Random(3)
    day = [
        respondent(i, i * 2, f"n{i}", {"open:popular"} if rng.random() < 0.3 else {f"open:{rng.choice(TO_OPEN)}"})
        for i in range(3000)
    ]
    assert detect(day) == []
    assert detect(day, DEFAULT_SETTINGS.model_copy(update={"same_lift": 1.0})) != []  # what the lift rules out


def test_the_same_answers_spread_thinner_than_the_window_are_not_a_cluster() -> None:
    slow = [respondent(n, n * DEFAULT_SETTINGS.same_window_s / 10, f"net-{n}", {"open:p", "open:q"}) for n in range(60)]
    assert detect(slow) == []


def test_forms_filled_too_fast_from_one_network_are_a_cluster() -> None:
    fast = [respondent(n, n * 3600, "bot", {f"open:d{n}"}, fill=2.0) for n in range(DEFAULT_SETTINGS.fast_min)]
    careful = [respondent(50 + n, n * 3600, "bot", {f"open:e{n}"}, fill=200.0) for n in range(10)]
    few = [respondent(80 + n, n * 60, "alone", {f"open:f{n}"}, fill=2.0) for n in range(DEFAULT_SETTINGS.fast_min - 1)]
    clusters = detect(fast + careful + few)
    assert [(c.signals, c.keys) for c in clusters] == [({Signal.FAST_FILL}, {r.key for r in fast})]


def test_a_cluster_keeps_its_id_as_it_grows_and_merges_the_signals_of_the_same_members() -> None:
    burst = [respondent(n, n * 0.5, "script", {"open:pushed", "open:other"}) for n in range(40)]
    first = detect(background() + burst[:30])
    later = detect(background() + burst)
    assert len(first) == len(later) == 1
    assert first[0].cluster_id == later[0].cluster_id
    assert later[0].signals == {Signal.NETWORK_BURST, Signal.SAME_ANSWERS}
    assert len(later[0].members) == 40


def test_detection_is_deterministic_whatever_the_input_order() -> None:
    answers, _ = population(random.Random(5), TO_OPEN, TO_IMPROVE, 500, 3600)
    respondents = respondents_of(answers)
    shuffled = list(respondents)
    random.Random(1).shuffle(shuffled)
    as_ids = lambda clusters: [(c.cluster_id, sorted(c.keys)) for c in clusters]  # noqa: E731
    assert as_ids(detect(respondents)) == as_ids(detect(shuffled))


def test_jaccard() -> None:
    assert jaccard(frozenset("ab"), frozenset("abc")) == 2 / 3
    assert jaccard(frozenset(), frozenset()) == 0.0

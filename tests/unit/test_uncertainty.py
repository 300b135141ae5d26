"""Rank intervals: the bootstrap's arithmetic, its determinism, and its calibration on simulated
consultations drawn from known preferences."""

import random

import numpy as np
import pytest

from shared import uncertainty
from shared.uncertainty import Interval, Table, draws_of, rank_intervals, seed_of, tie_groups

MASK = 2**64 - 1


def splitmix64_reference(seed: int, counter: int) -> int:
    """The published generator, in Python integers: what numpy's wrapping uint64 must give."""
    z = (seed + (counter + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_the_generator_is_splitmix64_over_a_counter() -> None:
    seed = seed_of("c1")
    counters = np.arange(0, 50, dtype=np.uint64)
    got = uncertainty._splitmix64(counters, seed)
    assert [int(v) for v in got] == [splitmix64_reference(seed, c) for c in range(50)]


def test_each_resample_draws_half_the_respondents() -> None:
    weights = uncertainty._weights(3, 4, 11, seed_of("c1"))
    assert weights.shape == (4, 11)
    assert weights.sum(axis=1).tolist() == [draws_of(11)] * 4
    seed, n, m = seed_of("c1"), 11, draws_of(11)
    first = [(splitmix64_reference(seed, 3 * m + j) >> 32) * n >> 32 for j in range(m)]
    assert weights[0].tolist() == [float(first.count(i)) for i in range(n)]


def test_the_seed_comes_from_the_consultation() -> None:
    assert seed_of("c1") == seed_of("c1") != seed_of("c2")
    assert 0 <= seed_of("c1") < 2**64


def test_consecutive_overlapping_intervals_are_one_group() -> None:
    assert tie_groups([(1, 1), (2, 3), (2, 4), (4, 5), (6, 6)]) == [1, 2, 2, 2, 5]
    assert tie_groups([]) == []


def table(keys: list[str], answers: list[tuple[int, int, int]]) -> Table:
    return Table.of(keys, answers)


def test_observed_ranks_use_the_published_tie_break() -> None:
    # b and c: same score; c has more respondents. a and d: same score and respondents; a first by key.
    answers = [(0, 1, 3), (1, 2, 1), (2, 2, 2), (3, 0, 1), (4, 3, 1)]
    found = rank_intervals(5, {"t": table(["a", "b", "c", "d"], answers)}, 50, 1)["t"]
    assert [found[k].rank for k in ["c", "b", "a", "d"]] == [1, 2, 3, 4]
    for interval in found.values():
        assert interval.low <= interval.rank <= interval.high


def test_a_clear_leader_is_sure_and_equal_rows_are_too_close_to_call() -> None:
    answers = [(i, 0, 1) for i in range(400)] + [(i, 1, 1) for i in range(0, 400, 2)]
    answers += [(i, 2, 1) for i in range(1, 400, 2)]
    found = rank_intervals(400, {"t": table(["lead", "x", "y"], answers)}, 200, seed_of("c"))["t"]
    assert found["lead"] == Interval(1, 1, 1, 1, False)
    assert found["x"].too_close_to_call
    assert found["y"].too_close_to_call
    assert found["x"].tie_group == found["y"].tie_group == 2


def test_the_same_inputs_give_the_same_intervals_whatever_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(7)
    answers = [(i, r, rnd.choice([1, 2, 3])) for i in range(300) for r in range(6) if rnd.random() < 0.3 + r / 20]
    tables = {"t": table([f"d{r}" for r in range(6)], answers)}
    before = rank_intervals(300, tables, 100, seed_of("c"))
    monkeypatch.setattr(uncertainty, "_BATCH_CELLS", 1)
    assert rank_intervals(300, tables, 100, seed_of("c")) == before


def test_large_weights_rank_on_score_then_respondents() -> None:
    # Weights too large to fold score and respondents into one exact float: ranked on both keys.
    answers = [(0, 0, 2**40), (1, 1, 2**40), (2, 1, 0)]
    found = rank_intervals(3, {"t": table(["a", "b"], answers)}, 20, 1)["t"]
    assert (found["b"].rank, found["a"].rank) == (1, 2)


def test_nobody_no_rows() -> None:
    assert rank_intervals(0, {"t": table([], [])}, 10, 1) == {"t": {}}
    assert rank_intervals(1, {"t": table(["a"], [(0, 0, 1)])}, 10, 1)["t"]["a"] == Interval(1, 1, 1, 1, False)


# --- calibration ------------------------------------------------------------------------------------

CONSULTATIONS = 200
RESAMPLES = 500
WEIGHTS = (3, 2, 1)


def simulate(rnd: random.Random, support: list[float], respondents: int) -> Table:
    """Respondents who each ask for dataset r with probability support[r], at a priority drawn uniformly."""
    answers = [
        (i, r, rnd.choice(WEIGHTS)) for i in range(respondents) for r, p in enumerate(support) if rnd.random() < p
    ]
    return Table.of([f"d{r}" for r in range(len(support))], answers)


def test_calibration_90_percent_intervals_contain_the_true_rank() -> None:
    """Known preferences: each consultation draws the true support of 8 datasets; the true rank is the
    order of the expected scores (support × mean weight). Every row of every consultation counts."""
    contained = rows = 0
    for c in range(CONSULTATIONS):
        rnd = random.Random(c)
        support = [rnd.uniform(0.02, 0.4) for _ in range(8)]
        true_rank = {f"d{r}": 1 + sorted(support, reverse=True).index(p) for r, p in enumerate(support)}
        n = rnd.randint(200, 600)
        found = rank_intervals(n, {"t": simulate(rnd, support, n)}, RESAMPLES, seed_of(f"sim-{c}"))["t"]
        for key, interval in found.items():
            rows += 1
            contained += interval.low <= true_rank[key] <= interval.high
    print(f"coverage: {contained}/{rows} = {contained / rows:.3f}")
    assert contained / rows >= 0.85


def test_calibration_equal_support_is_too_close_to_call() -> None:
    """Two datasets of equal true support, between neighbours well apart: both flagged, in one group."""
    flagged = 0
    for c in range(CONSULTATIONS):
        rnd = random.Random(10_000 + c)
        equal = rnd.uniform(0.1, 0.3)
        support = [min(0.9, equal * 2), equal, equal, equal / 3]
        n = rnd.randint(200, 600)
        found = rank_intervals(n, {"t": simulate(rnd, support, n)}, RESAMPLES, seed_of(f"tie-{c}"))["t"]
        a, b = found["d1"], found["d2"]
        flagged += a.too_close_to_call and b.too_close_to_call and a.tie_group == b.tie_group
    print(f"equal support flagged: {flagged}/{CONSULTATIONS} = {flagged / CONSULTATIONS:.3f}")
    assert flagged / CONSULTATIONS >= 0.90

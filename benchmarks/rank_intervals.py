"""What rank intervals cost: the bootstrap at publication (200,000 respondents, 1,000 resamples) and per
new revision of a live ranking (10,000 respondents, 200 resamples), next to ranking the same answers once.

    uv run python -m benchmarks.rank_intervals [--respondents 200000] [--resamples 1000]
        [--live-respondents 10000] [--live-resamples 200] [--seed 3]

Synthetic answers shaped like a consultation: each respondent asks to open 1–8 of 400 census datasets
(drawn by a Zipf-like popularity, at a priority drawn uniformly), to improve 0–3 of 150 open ones, and
suggests 0–1 of 3,000 groups. The live figure is the computation a request triggers when the ranking
moved since the last one (scoring caches it per revision; a request at an unchanged revision reuses it),
from ballots already read: reading them from MongoDB comes on top (see `close_to_results` for that cost).
"""

import argparse
import random
import time
from collections.abc import Sequence

from shared.contracts import Priority, RankingKind
from shared.uncertainty import Answers, alternative_ranks, intervals_of, seed_of, tables_of

WEIGHTS = {Priority.ESSENTIAL: 3, Priority.IMPORTANT: 2, Priority.USEFUL: 1}


def synthetic(respondents: int, seed: int) -> list[Answers]:
    rng = random.Random(seed)
    census = [f"census-{i:04d}" for i in range(400)]
    popularity = [1 / (i + 1) ** 0.8 for i in range(len(census))]
    opened = [f"open-{i:04d}" for i in range(150)]
    found: list[Answers] = []
    for _ in range(respondents):
        answers: list[tuple[RankingKind, str, Priority | None]] = [
            (RankingKind.OPEN, d, rng.choice(list(Priority)))
            for d in set(rng.choices(census, popularity, k=rng.randint(1, 8)))
        ]
        answers += [(RankingKind.IMPROVE, d, None) for d in rng.sample(opened, rng.randint(0, 3))]
        if rng.random() < 0.5:
            answers.append((RankingKind.SUGGESTIONS, f"title:group-{rng.randrange(3000)}", None))
        found.append(answers)
    return found


def measure(answers: Sequence[Answers], resamples: int, repeat: int = 1) -> tuple[float, float, int]:
    """Seconds to rank once (no resample), seconds for the intervals and alternative ranks, answers."""
    started = time.perf_counter()
    intervals_of(answers, WEIGHTS, 0, 1, 90)
    once = time.perf_counter() - started
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        intervals_of(answers, WEIGHTS, resamples, seed_of("benchmark"), 90)
        alternative_ranks(answers)
        best = min(best, time.perf_counter() - started)
    total = sum(len(t.rows) for t in tables_of(answers, WEIGHTS).values())
    return once, best, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--respondents", type=int, default=200_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--live-respondents", type=int, default=10_000)
    parser.add_argument("--live-resamples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    live = synthetic(args.live_respondents, args.seed)
    once, took, answers = measure(live, args.live_resamples, repeat=5)
    print(
        f"live: {args.live_respondents:,} respondents ({answers:,} answers), {args.live_resamples} resamples: "
        f"{took * 1000:.0f} ms per new revision (best of 5; ranking once: {once * 1000:.1f} ms)"
    )
    published = synthetic(args.respondents, args.seed)
    once, took, answers = measure(published, args.resamples)
    print(
        f"publication: {args.respondents:,} respondents ({answers:,} answers), {args.resamples} resamples: "
        f"{took:.1f} s (ranking once: {once * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()

"""How well stuffing detection tells attacks from honest respondents, on a synthetic consultation, and
what each threshold does: prints, per setting, the share of each attack flagged and of honest
respondents flagged.

    uv run python -m benchmarks.stuffing_detection [--honest 2000] [--span-hours 1] [--seed 17]

The population (also what `tests/e2e/test_stuffing.py` posts, time-compressed):
- honest respondents arriving evenly over the span: most from a network of their own, some from
  networks shared by 30 respondents within an hour (a university, a ministry office); varied answers
  drawn by popularity; half by the web form, filled in one to ten minutes;
- attack A: 300 near-identical answers (a few variations) from one network within a minute, pushing a
  dataset honest respondents rank low;
- attack B: one answer set from 150 networks, spread over ten minutes;
- attack C (not caught, shown for honesty): 150 answers from 150 networks over six hours, each naming
  the pushed dataset with two popular ones drawn at random.
"""

import argparse
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.backoffice.detection import DEFAULT_SETTINGS, Respondent, detect
from shared.contracts import DetectionSettings

START = datetime(2026, 12, 1, 9, tzinfo=UTC)
SHARED_NETWORKS = 8
SHARED_SIZE = 30


@dataclass(frozen=True)
class Answer:
    """What one synthetic respondent asks for, and how and from where they answer."""

    who: str  # honest, attack-a, attack-b, attack-c
    network: str
    at_s: float  # seconds from the start
    open: tuple[tuple[str, str], ...]  # (dataset, priority)
    improve: tuple[str, ...]
    fill_seconds: float | None

    def datasets(self) -> frozenset[str]:
        return frozenset([f"open:{d}" for d, _ in self.open] + [f"improve:{d}" for d in self.improve])


def popular(rng: random.Random, ids: Sequence[str], k: int) -> list[str]:
    """k distinct ids drawn by a Zipf-like popularity (the first most often)."""
    weights = [1 / (rank + 1) for rank in range(len(ids))]
    chosen: list[str] = []
    while len(chosen) < min(k, len(ids)):
        pick = rng.choices(ids, weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return chosen


PRIORITIES = ("essential", "important", "useful")


def population(
    rng: random.Random, to_open: Sequence[str], to_improve: Sequence[str], honest: int, span_s: float
) -> tuple[list[Answer], str]:
    """Honest respondents and attacks A, B and C, by arrival; and the dataset the attacks push."""
    pushed = to_open[-1]  # the least popular: honest respondents rarely name it
    ranked = list(to_open[:-1])
    answers: list[Answer] = []
    shared_hour = [(f"shared-{n}", rng.uniform(0, max(1.0, span_s - 3600))) for n in range(SHARED_NETWORKS)]
    for n in range(honest):
        if n < SHARED_NETWORKS * SHARED_SIZE:
            network, start = shared_hour[n % SHARED_NETWORKS]
            at = start + rng.uniform(0, min(3600.0, span_s))
        else:
            network, at = f"own-{n}", rng.uniform(0, span_s)
        chosen = popular(rng, ranked, rng.choice((1, 2, 2, 3, 3, 4, 5)))
        improve = tuple(popular(rng, to_improve, rng.choice((0, 0, 1, 2))))
        fill = rng.uniform(60, 600) if rng.random() < 0.5 else None
        answers.append(Answer("honest", network, at, tuple((d, rng.choice(PRIORITIES)) for d in chosen), improve, fill))
    a_start, b_start = span_s * 0.4, span_s * 0.7
    base = ranked[3:5]
    for _ in range(300):
        varied = [(pushed, "essential")] + [(d, rng.choice(PRIORITIES)) for d in base if rng.random() < 0.85]
        if rng.random() < 0.2:
            varied.append((rng.choice(ranked[:3]), "useful"))
        answers.append(Answer("attack-a", "attacker", a_start + rng.uniform(0, 60), tuple(varied), (), None))
    for n in range(150):
        at = b_start + rng.uniform(0, 600)
        answers.append(Answer("attack-b", f"botnet-{n}", at, ((pushed, "essential"), (ranked[5], "useful")), (), None))
    for n in range(150):
        at = rng.uniform(0, min(span_s, 6 * 3600))
        scattered = ((pushed, "essential"), *((d, "important") for d in popular(rng, ranked, 2)))
        answers.append(Answer("attack-c", f"scattered-{n}", at, scattered, (), None))
    return sorted(answers, key=lambda a: a.at_s), pushed


def respondents_of(answers: Sequence[Answer], start: datetime = START) -> list[Respondent]:
    respondents = []
    for n, answer in enumerate(answers):
        at = start + timedelta(seconds=answer.at_s)
        respondents.append(
            Respondent(f"r{n:05d}", f"resp-{n}", at, at, answer.network, answer.fill_seconds, answer.datasets())
        )
    return respondents


def flagged_shares(answers: Sequence[Answer], settings: DetectionSettings) -> dict[str, float]:
    """Per kind of respondent, the share in a flagged cluster."""
    respondents = respondents_of(answers)
    flagged = {key for cluster in detect(respondents, settings) for key in cluster.keys}
    shares = {}
    for who in ("honest", "attack-a", "attack-b", "attack-c"):
        keys = [r.key for r, a in zip(respondents, answers, strict=True) if a.who == who]
        shares[who] = sum(k in flagged for k in keys) / len(keys)
    return shares


SWEEP: dict[str, tuple[float, ...]] = {
    "burst_min": (10, 15, 25, 40),
    "burst_window_s": (300, 600, 1800),
    "same_min": (10, 20, 40),
    "same_similarity": (0.4, 0.6, 0.8),
    "same_lift": (1, 2, 3, 5),
    "same_window_s": (120, 600, 1800),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--honest", type=int, default=2000)
    parser.add_argument("--span-hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--to-open", type=int, default=12, help="datasets to open to choose from (the census holds about 12)"
    )
    args = parser.parse_args()
    to_open = [f"ouvrir-{n:03d}" for n in range(args.to_open)]
    to_improve = [f"ameliorer-{n:03d}" for n in range(60)]
    answers, _ = population(random.Random(args.seed), to_open, to_improve, args.honest, args.span_hours * 3600)
    print(f"{args.honest} honest respondents over {args.span_hours} h, {args.to_open} datasets to open; share flagged")
    print(f"{'setting':<28} {'honest':>8} {'attack A':>9} {'attack B':>9} {'attack C':>9}")

    def line(label: str, settings: DetectionSettings) -> None:
        s = flagged_shares(answers, settings)
        print(f"{label:<28} {s['honest']:>8.2%} {s['attack-a']:>9.1%} {s['attack-b']:>9.1%} {s['attack-c']:>9.1%}")

    line("defaults", DEFAULT_SETTINGS)
    for name, values in SWEEP.items():
        for value in values:
            typed = type(getattr(DEFAULT_SETTINGS, name))(value)
            line(f"{name}={value:g}", DEFAULT_SETTINGS.model_copy(update={name: typed}))


if __name__ == "__main__":
    main()

"""How sure a ranking is: rank intervals from a bootstrap over respondents, and "too close to call".

One implementation, used by scoring (live), the publisher (published) and the audit, so that the three
agree to the last digit. A resample draws respondents with replacement, each respondent's counted answer
as a whole; the rows are ranked again in each resample with the published tie-break (higher score, then
more respondents, then key ascending); a row's interval is the order statistics of its resampled ranks
at the tails of the level, widened if needed to contain its rank. Consecutive rows whose intervals
overlap are "too close to call", one group.

Each resample draws half the counted respondents (rounded up), not all of them: an m-out-of-n
bootstrap. With all n, two rows of equal true support are told apart whenever their observed gap
exceeds 1.645 standard errors, i.e. one time in ten at 90 % — the plain bootstrap is known to be too
sure of ranks near ties (Hall & Miller, "Using the bootstrap to quantify the authority of an empirical
ranking", Ann. Statist. 2009). Half-size resamples widen every interval by about √2: equal rows are
flagged about 98 % of the time, and rows far apart keep narrow intervals.

Determinism across machines and library versions (the audit recomputes the files byte for byte): the
draws come from splitmix64 over a counter, in numpy's wrapping uint64 arithmetic, not from a numpy
random Generator (whose streams may change between versions); scores are integers (sums of integer
weights, exact in float64 far beyond any consultation); respondents are numbered in the order of the
public archive (`pseudonymous_order`), the same live and published.

Pure: no I/O.
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.contracts import Priority, RankingKind, RankingRow, RankUncertainty

__all__ = [
    "DEFAULT_LEVEL",
    "STATEMENT",
    "WEIGHTINGS",
    "Answers",
    "Interval",
    "Table",
    "alternative_ranks",
    "draws_of",
    "intervals_of",
    "method_of",
    "pseudonymous_order",
    "rank_intervals",
    "resampled_ranks",
    "seed_of",
    "tables_of",
    "tie_groups",
    "weightings",
    "with_intervals",
]

DEFAULT_LEVEL = 90  # percent
# Alternative weightings of "to open" (essential, important, useful), named in the method.
WEIGHTINGS: Mapping[str, tuple[int, int, int]] = {"equal_weights": (1, 1, 1), "essential_only": (1, 0, 0)}

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_BATCH_CELLS = 4_000_000  # resamples × answers handled at once: bounds the memory of one batch

Indices = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def pseudonymous_order(consultation_id: str, response_id: str) -> str:
    """Where a respondent stands in the public archive: a hash, so not the order they answered in, and
    the same on every replica and after every restart (the bootstrap numbers respondents in this order)."""
    return hashlib.sha256(f"{consultation_id}\n{response_id}".encode()).hexdigest()


def seed_of(consultation_id: str) -> int:
    """The bootstrap's seed: derived from the consultation, so anyone can draw the same resamples."""
    return int.from_bytes(hashlib.sha256(f"bootstrap\n{consultation_id}".encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Table:
    """One ranking as answers: answer `a` adds `scores[a]` to the score of row `rows[a]` and one
    respondent, for respondent `respondents[a]` (0-based, in archive order; at most once per row)."""

    keys: Sequence[str]  # the rows
    respondents: Indices
    rows: Indices
    scores: Indices

    @classmethod
    def of(cls, keys: Sequence[str], answers: Iterable[tuple[int, int, int]]) -> "Table":
        """A table from (respondent, row, score) triples."""
        found = np.array(list(answers), dtype=np.int64).reshape(-1, 3)
        return cls(tuple(keys), found[:, 0].copy(), found[:, 1].copy(), found[:, 2].copy())


@dataclass(frozen=True)
class Interval:
    """A row's rank, its interval, and its group of rows that cannot be told apart."""

    rank: int
    low: int
    high: int
    tie_group: int  # the rank of the group's first row
    too_close_to_call: bool  # the group has more than one row


def _splitmix64(counter: npt.NDArray[np.uint64], seed: int) -> npt.NDArray[np.uint64]:
    z = np.uint64(seed) + (counter + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def draws_of(n: int) -> int:
    """Respondents drawn per resample: half the counted ones, rounded up (an m-out-of-n bootstrap)."""
    return (n + 1) // 2


def _weights(first: int, count: int, n: int, seed: int) -> Floats:
    """How many times each respondent is drawn in resamples `first … first + count - 1`: (count, n).
    Draw j of resample b is respondent ⌊(high 32 bits of splitmix64(b·m + j)) · n / 2³²⌋, m = `draws_of(n)`."""
    m = draws_of(n)
    counter = np.arange(first * m, (first + count) * m, dtype=np.uint64)
    drawn = ((_splitmix64(counter, seed) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)
    drawn += np.repeat(np.arange(count, dtype=np.uint64) * np.uint64(n), m)
    return np.bincount(drawn.astype(np.int64), minlength=count * n).reshape(count, n).astype(np.float64)


def _merit(table: Table, n: int) -> Floats | None:
    """Each answer's score and respondent as one number, score·(n + 1) + 1, so that a row's sum orders
    rows by score then respondents; None when the sums could leave the integers float64 holds exactly."""
    top = int(table.scores.max(initial=0))
    if (top + 1) * (n + 1) * (n + 1) >= 2**53:
        return None
    return (table.scores * (n + 1) + 1).astype(np.float64)


def _ranks(table: Table, weights: Floats, key_order: Indices, merit: Floats | None) -> Indices:
    """The rank of each row in each resample (1-based): (resamples, rows). Sums of integers below 2⁵³
    in float64 are exact whatever the order of the additions."""
    count, width = weights.shape[0], len(table.keys)
    drawn = weights[:, table.respondents]
    cells = (np.arange(count, dtype=np.int64)[:, None] * width + table.rows[None, :]).ravel()
    keys: tuple[npt.NDArray[Any], ...]
    if merit is not None:
        total = np.bincount(cells, weights=(drawn * merit).ravel(), minlength=count * width)
        keys = (np.broadcast_to(key_order, (count, width)), -total.reshape(count, width))
    else:
        score = np.bincount(cells, weights=(drawn * table.scores).ravel(), minlength=count * width)
        respondents = np.bincount(cells, weights=drawn.ravel(), minlength=count * width)
        keys = (
            np.broadcast_to(key_order, (count, width)),
            -respondents.reshape(count, width),
            -score.reshape(count, width),
        )
    order = np.lexsort(keys, axis=-1)
    ranks = np.empty((count, width), dtype=np.int64)
    np.put_along_axis(ranks, order, np.arange(1, width + 1, dtype=np.int64)[None, :], axis=-1)
    return ranks


def _key_order(keys: Sequence[str]) -> Indices:
    position = {key: i for i, key in enumerate(sorted(keys))}
    return np.array([position[k] for k in keys], dtype=np.int64)


def resampled_ranks(n: int, tables: Mapping[Any, Table], resamples: int, seed: int) -> dict[Any, Indices]:
    """The observed rank (row 0) and the rank in each resample (rows 1…) of every row of each table, the
    tables drawn with the same resamples of the `n` respondents: {table: (1 + resamples, rows)}."""
    orders = {name: _key_order(t.keys) for name, t in tables.items()}
    merits = {name: _merit(t, n) for name, t in tables.items()}
    everyone = np.ones((1, n), dtype=np.float64)
    found = {name: [_ranks(t, everyone, orders[name], merits[name])] for name, t in tables.items()}
    answers = max((len(t.rows) for t in tables.values()), default=0) + n
    batch = max(1, _BATCH_CELLS // max(answers, 1))
    for first in range(0, resamples if n else 0, batch):
        weights = _weights(first, min(batch, resamples - first), n, seed)
        for name, table in tables.items():
            found[name].append(_ranks(table, weights, orders[name], merits[name]))
    return {name: np.concatenate(parts) for name, parts in found.items()}


def _bounds(resampled: Indices, observed: Indices, level: int) -> tuple[Indices, Indices]:
    """The ⌊r·(1 − level)/2⌋-th and ⌈r·(1 + level)/2⌉-th smallest resampled ranks (1-based), widened to
    contain the observed rank."""
    count = resampled.shape[0]
    if count == 0:
        return observed, observed
    low_at = max(1, (count * (100 - level)) // 200)
    high_at = min(count, -(-count * (100 + level) // 200))
    ordered = np.partition(resampled, sorted({low_at - 1, high_at - 1}), axis=0)
    return np.minimum(ordered[low_at - 1], observed), np.maximum(ordered[high_at - 1], observed)


def tie_groups(bounds: Sequence[tuple[int, int]]) -> list[int]:
    """For rows in rank order with their intervals, the rank of the first row of each one's group:
    consecutive rows whose intervals overlap are one group."""
    groups: list[int] = []
    for position, (low, high) in enumerate(bounds):
        if position and low <= bounds[position - 1][1] and bounds[position - 1][0] <= high:
            groups.append(groups[-1])
        else:
            groups.append(position + 1)
    return groups


def rank_intervals(
    n: int, tables: Mapping[Any, Table], resamples: int, seed: int, level: int = DEFAULT_LEVEL
) -> dict[Any, dict[str, Interval]]:
    """For each table, each row's rank, its `level` % bootstrap interval and its tie group, by key."""
    found: dict[Any, dict[str, Interval]] = {}
    for name, ranks in resampled_ranks(n, tables, resamples, seed).items():
        keys = tables[name].keys
        low, high = _bounds(ranks[1:], ranks[0], level)
        ordered = sorted(range(len(keys)), key=lambda i: int(ranks[0, i]))
        bounds = [(int(low[i]), int(high[i])) for i in ordered]
        groups = tie_groups(bounds)
        sizes: dict[int, int] = {}
        for group in groups:
            sizes[group] = sizes.get(group, 0) + 1
        found[name] = {
            keys[i]: Interval(int(ranks[0, i]), b[0], b[1], group, sizes[group] > 1)
            for i, b, group in zip(ordered, bounds, groups, strict=True)
        }
    return found


# --- rankings ---------------------------------------------------------------------------------------

# One respondent's counted answers: (ranking, row key, priority — to open only).
Answers = Sequence[tuple[RankingKind, str, Priority | None]]

STATEMENT = {
    "fr": (
        "Intervalles de rang : rééchantillonnage (bootstrap) des répondants, la réponse comptée de chacun tirée "
        "d'un bloc ; chaque rééchantillon tire avec remise la moitié des répondants comptés (arrondie au-dessus), "
        "numérotés dans l'ordre de l'archive publiée, avec le générateur splitmix64 sur un compteur, à partir de "
        "la graine publiée ; le classement est refait dans chaque rééchantillon avec la même règle d'égalité. "
        "L'intervalle d'une ligne va des rangs aux quantiles (1 − niveau)/2 et (1 + niveau)/2 de ses rangs "
        "rééchantillonnés, élargi pour contenir son rang. Des lignes consécutives dont les intervalles se "
        "chevauchent sont « trop proches pour être départagées » : un groupe, désigné par le rang de sa première "
        "ligne."
    ),
    "en": (
        "Rank intervals: a bootstrap over respondents, each one's counted answer drawn as a whole; each resample "
        "draws with replacement half the counted respondents (rounded up), numbered in the order of the published "
        "archive, with the splitmix64 generator over a counter from the published seed; the ranking is made again "
        "in each resample with the same tie-break. A row's interval runs from the (1 − level)/2 to the "
        "(1 + level)/2 quantile of its resampled ranks, widened to contain its rank. Consecutive rows whose "
        "intervals overlap are 'too close to call': one group, named by the rank of its first row."
    ),
}


def weightings() -> dict[str, dict[Priority, int]]:
    """The alternative weightings of "to open", named."""
    return {name: dict(zip(Priority, weights, strict=True)) for name, weights in WEIGHTINGS.items()}


def method_of(resamples: int, seed: int, level: int = DEFAULT_LEVEL) -> RankUncertainty:
    """The bootstrap as the method states it."""
    return RankUncertainty(
        resamples=resamples, level=level, seed=seed, statement=STATEMENT["en"], weightings=weightings()
    )


def tables_of(respondents: Sequence[Answers], weights: Mapping[Priority, int]) -> dict[RankingKind, Table]:
    """The three rankings as tables, respondents numbered in the order given; "to open" scored with `weights`."""
    keys: dict[RankingKind, dict[str, int]] = {kind: {} for kind in RankingKind}
    triples: dict[RankingKind, list[tuple[int, int, int]]] = {kind: [] for kind in RankingKind}
    for number, answers in enumerate(respondents):
        for kind, key, priority in answers:
            row = keys[kind].setdefault(key, len(keys[kind]))
            triples[kind].append((number, row, weights[priority] if priority is not None else 1))
    return {kind: Table.of(list(keys[kind]), triples[kind]) for kind in RankingKind}


def intervals_of(
    respondents: Sequence[Answers], weights: Mapping[Priority, int], resamples: int, seed: int, level: int
) -> dict[RankingKind, dict[str, Interval]]:
    """Each row's interval and tie group in the three rankings, the same resamples for all three."""
    return rank_intervals(len(respondents), tables_of(respondents, weights), resamples, seed, level)


def alternative_ranks(respondents: Sequence[Answers]) -> dict[str, dict[str, int]]:
    """Each "to open" row's rank under each alternative weighting: {row key: {weighting: rank}}."""
    found: dict[str, dict[str, int]] = {}
    for name, weights in weightings().items():
        table = tables_of(respondents, weights)[RankingKind.OPEN]
        observed = resampled_ranks(len(respondents), {name: table}, 0, 0)[name][0]
        for key, position in zip(table.keys, observed, strict=True):
            found.setdefault(key, {})[name] = int(position)
    return found


def with_intervals(
    rows: Iterable[RankingRow],
    intervals: Mapping[str, Interval],
    alternatives: Mapping[str, Mapping[str, int]] | None = None,
) -> list[RankingRow]:
    """Rows with their interval and tie group (and ranks under the alternative weightings), by key; a
    row whose served rank is outside its interval (counted since) has its interval widened to it."""
    updated = []
    for row in rows:
        interval = intervals.get(row.key)
        if interval is not None:
            low, high = min(interval.low, row.rank), max(interval.high, row.rank)
            row = row.model_copy(
                update={
                    "rank_interval": (low, high),
                    "too_close_to_call": interval.too_close_to_call,
                    "tie_group": interval.tie_group,
                }
            )
        if alternatives is not None and row.key in alternatives:
            row = row.model_copy(update={"ranks_by_weighting": dict(alternatives[row.key])})
        updated.append(row)
    return updated

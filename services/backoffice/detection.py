"""Ballot stuffing detection, as pure functions: which respondents look like one hand answering many
times. Nothing here decides: a flagged cluster is shown to staff, who exclude it or clear it.

Three signals, each over a consultation's respondents in order of their first response:
- a network burst: at least `burst_min` new respondents from one network fingerprint (IPv4 /24 or
  IPv6 /48 and browser family, hashed by ingest) within `burst_window_s`;
- the same answers: at least `same_min` respondents whose datasets (to open, to improve, suggested)
  are nearly the same (Jaccard similarity at least `same_similarity` with the answer set most of the
  cluster gave), `same_min` of them within `same_window_s`, and that answer set at least `same_lift`
  times as common among the arrivals of that window as among the rest of the consultation's (so the
  most popular answers, given by many honest respondents at a busy hour, are no cluster);
- too-fast forms: at least `fast_min` web forms from one network filled in under `fast_fill_s`.

Clusters from different signals that share most of their members (half of the smaller one) are one
cluster with both signals. A cluster's id derives from its signal and its first member, so it stays the
same while it grows.
"""

import hashlib
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.contracts import DetectionSettings, Signal

DEFAULT_SETTINGS = DetectionSettings(
    burst_window_s=600,
    burst_min=25,
    same_window_s=600,
    same_min=20,
    same_similarity=0.6,
    same_lift=3.0,
    fast_fill_s=10.0,
    fast_min=5,
)
PRIOR_ARRIVALS = 20  # how much the share over the whole consultation weighs in a lift
PUSHED_SHARE = 0.5  # a cluster pushes the datasets at least half its members ask for


@dataclass(frozen=True)
class Respondent:
    """What detection reads of one respondent: pseudonymous, no text."""

    key: str  # the pseudonymous respondent key
    response_id: str  # their counted (latest) submission
    first_at: datetime  # receipt of their first submission
    last_at: datetime  # receipt of their latest
    fingerprint: str | None  # network and browser family of their first submission
    fill_seconds: float | None  # of their latest submission, when the web form told it
    datasets: frozenset[str]  # what they ask for: `open:<id>`, `improve:<id>`, `add:<group>`


@dataclass
class Cluster:
    cluster_id: str
    signals: set[Signal]
    members: list[Respondent] = field(default_factory=list)

    @property
    def first_at(self) -> datetime:
        return min(m.first_at for m in self.members)

    @property
    def last_at(self) -> datetime:
        return max(m.first_at for m in self.members)

    @property
    def keys(self) -> set[str]:
        return {m.key for m in self.members}

    def pushed(self) -> list[str]:
        """The datasets at least half the members ask for, most asked first."""
        asked = Counter(item for m in self.members for item in m.datasets)
        floor = PUSHED_SHARE * len(self.members)
        return [item for item, n in sorted(asked.items(), key=lambda kv: (-kv[1], kv[0])) if n >= floor]

    def networks(self) -> int:
        return len({m.fingerprint for m in self.members if m.fingerprint})


def _cluster_id(prefix: str, *parts: str) -> str:
    return f"{prefix}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:10]}"


def _in_order(respondents: Iterable[Respondent]) -> list[Respondent]:
    return sorted(respondents, key=lambda r: (r.first_at, r.key))


def dense_runs(arrivals: Sequence[Respondent], window: timedelta, minimum: int) -> list[list[Respondent]]:
    """Runs of arrivals (in order) dense enough that `minimum` fall within a window, each member within
    a window of the previous one."""
    dense = [False] * len(arrivals)
    end = 0
    for start, first in enumerate(arrivals):
        while end < len(arrivals) and arrivals[end].first_at - first.first_at <= window:
            end += 1
        if end - start >= minimum:
            dense[start:end] = [True] * (end - start)
    runs: list[list[Respondent]] = []
    for respondent, flagged in zip(arrivals, dense, strict=True):
        if not flagged:
            continue
        if runs and respondent.first_at - runs[-1][-1].first_at <= window:
            runs[-1].append(respondent)
        else:
            runs.append([respondent])
    return runs


def network_bursts(respondents: Sequence[Respondent], settings: DetectionSettings) -> list[Cluster]:
    """Runs of new respondents from one network dense enough that `burst_min` fall within a window."""
    window = timedelta(seconds=settings.burst_window_s)
    by_network: dict[str, list[Respondent]] = defaultdict(list)
    for respondent in _in_order(respondents):
        if respondent.fingerprint:
            by_network[respondent.fingerprint].append(respondent)
    return [
        Cluster(_cluster_id("reseau", fingerprint, run[0].key), {Signal.NETWORK_BURST}, run)
        for fingerprint, arrivals in by_network.items()
        for run in dense_runs(arrivals, window, settings.burst_min)
    ]


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


@dataclass
class _Candidate:
    sets: Counter[frozenset[str]]
    members: list[Respondent]

    def core(self) -> frozenset[str]:
        """The answer set most members gave (the first such): newcomers are compared with it alone, so
        a group cannot drift from one answer set to another through near neighbours."""
        return self.sets.most_common(1)[0][0]


def same_answers(respondents: Sequence[Respondent], settings: DetectionSettings) -> list[Cluster]:
    """Respondents giving nearly the same answers as a group's most common answer set, dense enough in
    time that `same_min` fall within a window."""
    window = timedelta(seconds=settings.same_window_s)
    candidates: list[_Candidate] = []
    active: dict[str, list[_Candidate]] = defaultdict(list)  # dataset → live candidates whose sets name it
    for respondent in _in_order(respondents):
        if not respondent.datasets:
            continue
        best: _Candidate | None = None
        best_similarity = 0.0
        seen: set[int] = set()
        for item in sorted(respondent.datasets):  # sorted: the same clusters in every process
            alive = [c for c in active[item] if respondent.first_at - c.members[-1].first_at <= window]
            active[item] = alive
            for candidate in alive:
                if id(candidate) in seen:
                    continue
                seen.add(id(candidate))
                similarity = jaccard(respondent.datasets, candidate.core())
                if similarity >= settings.same_similarity and similarity > best_similarity:
                    best, best_similarity = candidate, similarity
        if best is None:
            best = _Candidate(Counter(), [])
            candidates.append(best)
        best.members.append(respondent)
        best.sets[respondent.datasets] += 1
        for item in sorted(respondent.datasets):
            if best not in active[item]:
                active[item].append(best)
    ordered = _in_order(respondents)
    times = [r.first_at for r in ordered]
    clusters = []
    for candidate in candidates:
        if len(candidate.members) < settings.same_min:
            continue
        core = candidate.core()
        similar = [r for r in ordered if r.datasets and jaccard(r.datasets, core) >= settings.same_similarity]
        for run in dense_runs(candidate.members, window, settings.same_min):
            if lift(run, similar, times) >= settings.same_lift:
                clusters.append(Cluster(_cluster_id("reponses", run[0].key), {Signal.SAME_ANSWERS}, run))
    return clusters


def lift(run: Sequence[Respondent], similar: Sequence[Respondent], times: Sequence[datetime]) -> float:
    """How many times more common the run's answer set is among the arrivals of its span than among the
    other arrivals of the consultation. The share outside is drawn towards the share over the whole
    consultation by `PRIOR_ARRIVALS` arrivals, so a run spanning nearly everything (nothing outside to
    compare with) has a lift near 1, and a set never seen outside a finite one."""
    first, last = run[0].first_at, run[-1].first_at
    arrivals_in = bisect_right(times, last) - bisect_left(times, first)
    similar_in = sum(first <= r.first_at <= last for r in similar)
    share_in = len(run) / max(arrivals_in, 1)
    share_all = len(similar) / max(len(times), 1)
    share_out = (len(similar) - similar_in + PRIOR_ARRIVALS * share_all) / (len(times) - arrivals_in + PRIOR_ARRIVALS)
    return share_in / share_out


def fast_forms(respondents: Sequence[Respondent], settings: DetectionSettings) -> list[Cluster]:
    """Networks from which at least `fast_min` web forms were filled faster than a person reads them."""
    by_network: dict[str, list[Respondent]] = defaultdict(list)
    for respondent in _in_order(respondents):
        fast = respondent.fill_seconds is not None and respondent.fill_seconds < settings.fast_fill_s
        if respondent.fingerprint and fast:
            by_network[respondent.fingerprint].append(respondent)
    return [
        Cluster(_cluster_id("rapide", fingerprint), {Signal.FAST_FILL}, members)
        for fingerprint, members in by_network.items()
        if len(members) >= settings.fast_min
    ]


def merged(clusters: Sequence[Cluster]) -> list[Cluster]:
    """Clusters sharing at least half of the smaller one's members, as one (the earliest one's id)."""
    ordered = sorted(clusters, key=lambda c: (c.first_at, c.cluster_id))
    parent = list(range(len(ordered)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys = [c.keys for c in ordered]
    owners: dict[str, list[int]] = defaultdict(list)
    for index, members in enumerate(keys):
        for key in members:
            owners[key].append(index)
    shared: Counter[tuple[int, int]] = Counter()
    for indices in owners.values():
        for a in indices:
            for b in indices:
                if a < b:
                    shared[(a, b)] += 1
    for (a, b), n in shared.items():
        if 2 * n >= min(len(keys[a]), len(keys[b])):
            parent[max(root(a), root(b))] = min(root(a), root(b))
    groups: dict[int, Cluster] = {}
    for index, cluster in enumerate(ordered):
        top = root(index)
        if top not in groups:
            groups[top] = Cluster(ordered[top].cluster_id, set(), [])
        group = groups[top]
        group.signals |= cluster.signals
        known = group.keys
        group.members.extend(m for m in cluster.members if m.key not in known)
    for group in groups.values():
        group.members.sort(key=lambda m: (m.first_at, m.key))
    return sorted(groups.values(), key=lambda c: (c.first_at, c.cluster_id))


def detect(respondents: Sequence[Respondent], settings: DetectionSettings = DEFAULT_SETTINGS) -> list[Cluster]:
    """Every flagged cluster of a consultation, earliest first."""
    return merged(
        network_bursts(respondents, settings) + same_answers(respondents, settings) + fast_forms(respondents, settings)
    )

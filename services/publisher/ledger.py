"""The publisher's own archive, built as the responses arrive: every consultation's counted ballots and
staff's decisions on flagged clusters, folded from `response.enriched.v1` and `exclusion.decided.v1`
with the same pure functions as scoring (`shared.ballots`). Nothing has to be read back at the close,
and the archive no longer comes from the service it is checked against: at the close, the rankings
computed from this archive must equal scoring's own tallies.

It is held in memory, like the state views, and rebuilt by reading both topics from the beginning when
the process starts (they keep the answers for the retention period). `positions` says how far it has
read each partition, so the closer waits until it has folded everything up to the watermark. Pure: the
Kafka reading is in `kafka_io.LogFollower`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from services.publisher.archive import Answer, Counted, answers_of
from services.publisher.domain import Offsets
from shared.ballots import (
    Ballot,
    Cluster,
    attribution,
    cluster_of,
    exclusions_in_force,
    fold,
    forgotten,
)
from shared.contracts import ConsultationDefined, ExclusionDecided, ExclusionInForce, ResponseEnriched
from shared.topics import EXCLUSIONS, RESPONSES_ENRICHED


@dataclass(frozen=True)
class Record:
    """What the ledger needs of a Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Folded:
    """What one batch did: responses counted or already seen, responses after their consultation's
    close (dropped, as scoring drops them), decisions, and records that could not be read."""

    responses: int = 0
    late: int = 0
    decisions: int = 0
    invalid: list[str] = field(default_factory=list)


class Ledger:
    def __init__(self, window_of: Callable[[str], ConsultationDefined | None]) -> None:
        self._window_of = window_of
        self._ballots: dict[str, dict[str, Ballot]] = {}  # consultation -> respondent key -> ballot
        # Each counted ballot as the archive reads it (none for who withdrew), made as it arrives, not at the close.
        self._counted: dict[str, dict[str, Counted]] = {}
        self._clusters: dict[str, dict[str, Cluster]] = {}  # consultation -> cluster id -> latest decision
        self._positions: dict[str, dict[tuple[str, int], int]] = {RESPONSES_ENRICHED: {}, EXCLUSIONS: {}}

    def positions(self, topic: str) -> Offsets:
        """The next offset to read of each partition of `topic`, as far as the ledger has folded it."""
        return dict(self._positions.get(topic, {}))

    def advance(self, topic: str, partition: int, position: int) -> None:
        """Record that the partition has been read up to `position` (control records included)."""
        positions = self._positions.setdefault(topic, {})
        positions[(topic, partition)] = max(position, positions.get((topic, partition), 0))

    def fold(self, records: Iterable[Record]) -> Folded:
        """Fold a batch of records of either topic, in order."""
        folded = Folded()
        for record in records:
            if record.topic == RESPONSES_ENRICHED:
                self._fold_response(record, folded)
            elif record.topic == EXCLUSIONS:
                self._fold_decision(record, folded)
            self.advance(record.topic, record.partition, record.offset + 1)
        return folded

    def _fold_response(self, record: Record, folded: Folded) -> None:
        try:
            enriched = ResponseEnriched.model_validate_json(record.value or b"")
        except ValidationError as error:
            folded.invalid.append(f"{record.topic}[{record.partition}]@{record.offset}: {error.error_count()} errors")
            return
        response = enriched.response
        consultation = self._window_of(response.consultation_id)
        if consultation is not None and not consultation.is_open_at(response.received_at):
            folded.late += 1
            return
        ballots = self._ballots.setdefault(response.consultation_id, {})
        old = ballots.get(response.respondent_key)
        new = fold(old, [enriched])
        folded.responses += 1
        if new is None or new == old:
            return
        ballots[response.respondent_key] = new
        counted = self._counted.setdefault(response.consultation_id, {})
        if new.withdrawn:
            counted.pop(response.respondent_key, None)
            return
        before = counted.get(response.respondent_key)
        same = before is not None and before.response_id == new.response_id
        answers = before.answers if before is not None and same else _answers(new)
        counted[response.respondent_key] = Counted(
            new.response_id, new.received_at, new.profile, len(new.seen), answers
        )

    def _fold_decision(self, record: Record, folded: Folded) -> None:
        key = (record.key or b"").decode("utf-8", "replace")
        if record.value is None:
            consultation_id, _, cluster_id = key.rpartition(":")
            if not (consultation_id and cluster_id):
                folded.invalid.append(f"{record.topic}@{record.offset}: a tombstone keyed {key!r}")
                return
            cluster = forgotten(consultation_id, cluster_id, record.offset)
        else:
            try:
                cluster = cluster_of(ExclusionDecided.model_validate_json(record.value), record.offset)
            except ValidationError as error:
                folded.invalid.append(f"{record.topic}@{record.offset}: {error.error_count()} errors")
                return
        clusters = self._clusters.setdefault(cluster.consultation_id, {})
        current = clusters.get(cluster.cluster_id)
        if current is None or cluster.position > current.position:
            clusters[cluster.cluster_id] = cluster
        folded.decisions += 1

    def _attributed(self, consultation_id: str) -> dict[str, str]:
        clusters = self._clusters.get(consultation_id, {}).values()
        return {key: cluster for (_, key), cluster in attribution(clusters).items()}

    async def ballots(self, consultation_id: str) -> list[Counted]:
        """Every respondent's counted ballot (none of those who withdrew: they are in no archive), marked
        with the cluster they are set aside for, if any; what `counted_ballot` says, without a model each."""
        attributed = self._attributed(consultation_id)
        return [
            counted if (cluster := attributed.get(key)) is None else replace(counted, exclusion=cluster)
            for key, counted in self._counted.get(consultation_id, {}).items()
        ]

    async def exclusions(self, consultation_id: str) -> list[ExclusionInForce]:
        """The clusters set aside, by id, each counting the ballots attributed to it."""
        return exclusions_in_force(
            self._clusters.get(consultation_id, {}).values(),
            self._attributed(consultation_id),
            self._ballots.get(consultation_id, {}).values(),
        )


def _answers(ballot: Ballot) -> tuple[Answer, ...]:
    titles = dict(ballot.titles)
    suggestions = ((group, matched, titles.get(group, group)) for group, matched in ballot.suggestions)
    return answers_of(ballot.open, ballot.improve, suggestions)

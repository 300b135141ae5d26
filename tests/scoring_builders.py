"""Responses as scoring receives them, the plans applied in memory as the repository applies them, and
staff's decisions on a cluster: for scoring's and the publisher's unit and integration tests."""

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from services.backoffice.detection import DEFAULT_SETTINGS
from services.scoring.domain import Ballot, BatchPlan, RowId, StoredRow, TallyField
from shared.contracts import (
    DatasetStatus,
    DatasetSummary,
    Decision,
    ExclusionDecided,
    ImprovementKind,
    ImprovementRequest,
    OpenRequest,
    Priority,
    Profile,
    RankingKind,
    ResponseEnriched,
    ResponseSubmitted,
    Signal,
    Suggestion,
    SuggestionMatch,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def enriched(
    response_id: str,
    respondent: str,
    seconds: float,
    opens: dict[str, Priority] | None = None,
    improves: dict[str, list[ImprovementKind]] | None = None,
    suggestions: list[str] | None = None,
    profile: Profile = Profile.RESEARCHER,
    consultation: str = "c1",
) -> ResponseEnriched:
    received = T0 + timedelta(seconds=seconds)
    response = ResponseSubmitted(
        event_id=response_id,
        occurred_at=received,
        consultation_id=consultation,
        response_id=response_id,
        respondent_key=respondent,
        profile=profile,
        received_at=received,
        open_requests=[OpenRequest(dataset_id=d, priority=p) for d, p in (opens or {}).items()],
        improvement_requests=[ImprovementRequest(dataset_id=d, kinds=k) for d, k in (improves or {}).items()],
        suggestions=[Suggestion(title=t) for t in suggestions or []],
    )
    datasets = {
        d: DatasetSummary(dataset_id=d, title=f"Title {d}", status=DatasetStatus.NOT_OPEN)
        for d in [*(opens or {}), *(improves or {})]
    }
    matches = [SuggestionMatch(group_key=f"title:{t.lower()}", title=t) for t in suggestions or []]
    return ResponseEnriched(
        event_id=response_id, occurred_at=received, response=response, datasets=datasets, suggestions=matches
    )


class InMemoryRankings:
    """Applies plans the way the repository does, for checking the domain without MongoDB."""

    def __init__(self) -> None:
        self.ballots: dict[tuple[str, str], Ballot] = {}
        self.rows: dict[RowId, Counter[TallyField]] = defaultdict(Counter)
        self.respondents: Counter[str] = Counter()

    def apply(self, plan: BatchPlan) -> None:
        for old, new in plan.ballots:
            key = (new.consultation_id, new.respondent_key)
            assert self.ballots.get(key) == old
            self.ballots[key] = new
        for row_id, change in plan.rows.items():
            self.rows[row_id].update(change.counts)
        for cid, totals in plan.consultations.items():
            self.respondents[cid] += totals.respondents

    def stored_rows(self, kind: RankingKind) -> list[StoredRow]:
        return [
            StoredRow(key=r.key, dataset_id=r.key, title=None, counts=dict(c))
            for r, c in self.rows.items()
            if r.kind is kind
        ]


SETTINGS = DEFAULT_SETTINGS  # the rule's thresholds: scoring only carries them


def decided(cluster_id: str, decision: Decision, respondents: list[str], consultation: str = "c1") -> ExclusionDecided:
    return ExclusionDecided(
        event_id=f"{cluster_id}-{decision}-{'-'.join(respondents)}",
        occurred_at=T0,
        consultation_id=consultation,
        cluster_id=cluster_id,
        decision=decision,
        reason="Rafale de réponses identiques depuis un même réseau.",
        signals=[Signal.NETWORK_BURST],
        first_at=T0,
        last_at=T0 + timedelta(minutes=5),
        datasets=["d1"],
        respondent_keys=respondents,
        settings=SETTINGS,
        decided_by="agent",
    )

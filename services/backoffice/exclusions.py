"""Flagged clusters and staff's decisions on them: detection runs over the respondents the workspace
keeps, each decision is an event on `exclusion.decided.v1` (scoring applies it) and a line in the
audit log. Decisions are taken while the consultation is open: the results frozen at the close carry
those in force then."""

import logging
import statistics
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.backoffice.detection import Cluster, detect
from services.backoffice.repository import ContributionRepository, StaffRepository
from shared.contracts import (
    ConsultationDefined,
    Decision,
    DetectionSettings,
    ExclusionDecided,
    Signal,
    utc_now,
)
from shared.kafka import EventPublisher, StateView
from shared.topics import EXCLUSIONS


class ClusterView(BaseModel):
    """A flagged cluster as staff see it (response ids are for staff only: never published)."""

    cluster_id: str
    signals: list[Signal]
    respondents: int = Field(description="Respondents in the cluster now.")
    first_at: datetime
    last_at: datetime
    networks: int = Field(description="Distinct network fingerprints among them.")
    median_fill_seconds: float | None = Field(description="Median web-form fill time, when forms told it.")
    datasets: list[str] = Field(
        description="What at least half of them ask for: `open:<id>`, `improve:<id>`, `add:<group>`."
    )
    response_ids: list[str] = Field(description="Their counted submissions.")
    detected: bool = Field(description="False for a decided cluster detection no longer flags (answers changed).")
    decision: Decision | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    new_since_decision: int = Field(default=0, description="Respondents who joined after the decision.")


class ClustersPage(BaseModel):
    consultation_id: str
    settings: DetectionSettings
    decisions_open: bool = Field(description="Decisions are taken until the consultation closes.")
    respondents: int = Field(
        description="Respondents detection read: every counted respondent the workspace holds so far."
    )
    excluded_respondents: int = Field(description="Respondents in the clusters excluded, as decided.")
    clusters: list[ClusterView]


class DecisionRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


CLOSED = (
    "la consultation est close : les résultats sont figés avec les décisions alors en vigueur / "
    "the consultation is closed: the results are frozen with the decisions in force then"
)
NO_REASON = (
    "donnez une raison (3 à 500 caractères), publiée avec les résultats / "
    "give a reason (3 to 500 characters), published with the results"
)


class Exclusions:
    def __init__(
        self,
        decisions: StateView[ExclusionDecided],
        consultations: StateView[ConsultationDefined],
        contributions: ContributionRepository,
        publisher: EventPublisher,
        staff: StaffRepository,
        settings: DetectionSettings,
        on_action: Callable[[str], None],
        logger: logging.Logger,
    ) -> None:
        self._decisions = decisions
        self._consultations = consultations
        self._contributions = contributions
        self._publisher = publisher
        self._staff = staff
        self.settings = settings
        self._on_action = on_action
        self._logger = logger

    def decision(self, consultation_id: str, cluster_id: str) -> ExclusionDecided | None:
        return self._decisions.get(f"{consultation_id}:{cluster_id}")

    def open_for_decisions(self, consultation: ConsultationDefined) -> bool:
        return utc_now() < consultation.closes_at

    async def detected(self, consultation_id: str) -> list[Cluster]:
        return detect(await self._contributions.respondents(consultation_id), self.settings)

    async def page(self, consultation_id: str) -> ClustersPage:
        consultation = self._consultations.get(consultation_id)
        assert consultation is not None
        respondents = await self._contributions.respondents(consultation_id)
        clusters = detect(respondents, self.settings)
        views = [self._view(cluster, self.decision(consultation_id, cluster.cluster_id)) for cluster in clusters]
        seen = {c.cluster_id for c in clusters}
        for decided in self._decided(consultation_id):
            if decided.cluster_id not in seen:
                views.append(self._undetected(decided))
        excluded = {
            key for d in self._decided(consultation_id) if d.decision is Decision.EXCLUDE for key in d.respondent_keys
        }
        return ClustersPage(
            consultation_id=consultation_id,
            settings=self.settings,
            decisions_open=self.open_for_decisions(consultation),
            respondents=len(respondents),
            excluded_respondents=len(excluded),
            clusters=views,
        )

    def _decided(self, consultation_id: str) -> list[ExclusionDecided]:
        found = [d for d in self._decisions.items.values() if d.consultation_id == consultation_id]
        return sorted(found, key=lambda d: d.cluster_id)

    @staticmethod
    def _view(cluster: Cluster, decided: ExclusionDecided | None) -> ClusterView:
        fills = [m.fill_seconds for m in cluster.members if m.fill_seconds is not None]
        known = set(decided.respondent_keys) if decided else set()
        return ClusterView(
            cluster_id=cluster.cluster_id,
            signals=sorted(cluster.signals),
            respondents=len(cluster.members),
            first_at=cluster.first_at,
            last_at=cluster.last_at,
            networks=cluster.networks(),
            median_fill_seconds=statistics.median(fills) if fills else None,
            datasets=cluster.pushed(),
            response_ids=[m.response_id for m in cluster.members],
            detected=True,
            decision=decided.decision if decided else None,
            reason=decided.reason if decided else None,
            decided_by=decided.decided_by if decided else None,
            decided_at=decided.occurred_at if decided else None,
            new_since_decision=len(cluster.keys - known) if decided else 0,
        )

    @staticmethod
    def _undetected(decided: ExclusionDecided) -> ClusterView:
        return ClusterView(
            cluster_id=decided.cluster_id,
            signals=decided.signals,
            respondents=len(decided.respondent_keys),
            first_at=decided.first_at,
            last_at=decided.last_at,
            networks=0,
            median_fill_seconds=None,
            datasets=decided.datasets,
            response_ids=[],
            detected=False,
            decision=decided.decision,
            reason=decided.reason,
            decided_by=decided.decided_by,
            decided_at=decided.occurred_at,
        )

    async def decide(
        self, consultation_id: str, cluster_id: str, decision: Decision, reason: str, who: str
    ) -> ExclusionDecided:
        """Exclude or clear a flagged cluster (a cluster decided before may be decided again even once
        detection no longer flags it); refused with `DecisionRefused`. Raises what Kafka raises."""
        consultation = self._consultations.get(consultation_id)
        if consultation is None:
            raise DecisionRefused(404, f"consultation inconnue / no consultation {consultation_id!r}")
        if not self.open_for_decisions(consultation):
            raise DecisionRefused(409, CLOSED)
        reason = reason.strip()
        if not 3 <= len(reason) <= 500:
            raise DecisionRefused(422, NO_REASON)
        cluster = next((c for c in await self.detected(consultation_id) if c.cluster_id == cluster_id), None)
        previous = self.decision(consultation_id, cluster_id)
        if cluster is None and previous is None:
            raise DecisionRefused(404, f"grappe inconnue / no flagged cluster {cluster_id!r}")
        now = utc_now()
        members: dict[str, Any]
        if cluster is not None:
            members = dict(
                signals=sorted(cluster.signals),
                first_at=cluster.first_at,
                last_at=cluster.last_at,
                # Suggestion groups named by typed words stay in the workspace: only catalogue ids are published.
                datasets=[d for d in cluster.pushed() if not d.startswith("add:title:")],
                respondent_keys=sorted(cluster.keys),
            )
        else:
            assert previous is not None
            members = dict(
                signals=previous.signals,
                first_at=previous.first_at,
                last_at=previous.last_at,
                datasets=previous.datasets,
                respondent_keys=previous.respondent_keys,
            )
        decided = ExclusionDecided(
            event_id=f"exclusion:{consultation_id}:{cluster_id}:{now.isoformat()}",
            occurred_at=now,
            consultation_id=consultation_id,
            cluster_id=cluster_id,
            decision=decision,
            reason=reason,
            settings=self.settings,
            decided_by=who,
            **members,
        )
        await self._publisher.publish(EXCLUSIONS, [(decided.key, decided)])
        self._decisions.put(decided.key, decided)
        action = f"cluster.{decision.value}"
        detail = f"{len(decided.respondent_keys)} répondants / respondents: {reason}"
        await self._staff.audit(now, who, action, decided.key, detail[:300])
        self._on_action(action)
        return decided

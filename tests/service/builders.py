"""Events for the service-layer tests, and a way to hand a batch of records to a router's subscriber."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.kafka import KafkaBroker, KafkaPublishMessage
from pydantic import BaseModel

from services.backoffice.detection import DEFAULT_SETTINGS
from shared.contracts import (
    PRIVACY_NOTICE,
    ConsultationDefined,
    DatasetStatus,
    DatasetSummary,
    Decision,
    ExclusionDecided,
    ImprovementKind,
    ImprovementRequest,
    OpenRequest,
    Priority,
    Profile,
    ResponseEnriched,
    ResponseForm,
    ResponseSubmitted,
    Signal,
    Suggestion,
    SuggestionMatch,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONSULTATION = ConsultationDefined(
    event_id="c1-defined",
    occurred_at=T0,
    consultation_id="c1",
    title="Consultation",
    opens_at=T0,
    closes_at=T0 + timedelta(days=30),
)


def submitted(
    response_id: str,
    respondent: str,
    seconds: float,
    opens: dict[str, Priority] | None = None,
    improves: dict[str, list[ImprovementKind]] | None = None,
    suggestions: Sequence[str] = (),
    profile: Profile = Profile.RESEARCHER,
    withdrawn: bool = False,
) -> ResponseSubmitted:
    received = T0 + timedelta(seconds=seconds)
    return ResponseSubmitted(
        event_id=response_id,
        occurred_at=received,
        consultation_id="c1",
        response_id=response_id,
        respondent_key=respondent,
        profile=profile,
        received_at=received,
        open_requests=[OpenRequest(dataset_id=d, priority=p) for d, p in (opens or {}).items()],
        improvement_requests=[ImprovementRequest(dataset_id=d, kinds=k) for d, k in (improves or {}).items()],
        suggestions=[Suggestion(title=t) for t in suggestions],
        withdrawn=withdrawn,
    )


def enriched(
    response_id: str,
    respondent: str,
    seconds: float,
    opens: dict[str, Priority] | None = None,
    suggestions: Sequence[str] = (),
    withdrawn: bool = False,
) -> ResponseEnriched:
    """A response as the catalogue forwards it, every dataset it names known and not open."""
    response = submitted(response_id, respondent, seconds, opens, suggestions=suggestions, withdrawn=withdrawn)
    datasets = {d: DatasetSummary(dataset_id=d, title=f"Title {d}", status=DatasetStatus.NOT_OPEN) for d in opens or {}}
    matches = [SuggestionMatch(group_key=f"title:{t.lower()}", title=t) for t in suggestions]
    return ResponseEnriched(
        event_id=response_id,
        occurred_at=response.received_at,
        response=response,
        datasets=datasets,
        suggestions=matches,
    )


DETECTION = DEFAULT_SETTINGS  # the rule's thresholds: scoring only carries them


def decision(cluster: str, respondents: list[str], verdict: Decision = Decision.EXCLUDE) -> ExclusionDecided:
    return ExclusionDecided(
        event_id=f"decided-{cluster}-{verdict.value}",
        occurred_at=T0,
        consultation_id="c1",
        cluster_id=cluster,
        decision=verdict,
        respondent_keys=respondents,
        reason="Rafale de réponses identiques depuis un même réseau.",
        signals=[Signal.NETWORK_BURST],
        first_at=T0,
        last_at=T0,
        datasets=["d-organs"],
        settings=DETECTION,
        decided_by="agent",
    )


async def deliver(broker: KafkaBroker, topic: str, *messages: BaseModel | bytes) -> None:
    """One batch of records on `topic`, keyed as the producers key them, to the subscribers of a
    broker under `TestKafkaBroker`."""
    keys = [key_of(m) for m in messages]
    if not any(keys):  # FastStream unwraps the messages only when one of them has a key
        await broker.publish_batch(*messages, topic=topic)
        return
    await broker.publish_batch(
        *(KafkaPublishMessage(m, key=k) for m, k in zip(messages, keys, strict=True)), topic=topic
    )


def key_of(message: BaseModel | bytes) -> bytes | None:
    if isinstance(message, ExclusionDecided):
        return message.key.encode()
    response = message.response if isinstance(message, ResponseEnriched) else message
    if isinstance(response, ResponseSubmitted):
        return f"{response.consultation_id}:{response.respondent_key}".encode()
    return None


def form(**fields: Any) -> ResponseForm:
    """A valid web form or JSON body, as ingest's use case takes it: a journalist asking to open `d-closed`."""
    body: dict[str, Any] = {
        "respondent": {"profile": "journalist"},
        "open_requests": [{"dataset_id": "d-closed", "priority": "essential"}],
        "consent": {"accepted": True, "notice": PRIVACY_NOTICE},
    }
    return ResponseForm.model_validate(body | fields)

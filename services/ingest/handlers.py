"""Accepting a submission, whether it comes from the JSON API or the web form."""

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.ingest.domain import (
    FieldError,
    Window,
    accept,
    body_digest,
    form_errors,
    partition_key,
    receipt_time,
    respondent_key,
    response_id_for,
    token_valid,
    window_at,
)
from services.ingest.outbox import Unavailable
from services.ingest.repository import RespondentStore
from shared.contracts import ConsultationDefined, DatasetStatus, ResponseForm, utc_now
from shared.topics import RESPONSES_SUBMITTED

SERVICE = "ingest"
NOT_ISSUED = (
    "ce code de répondant n'a pas été délivré pour cette consultation / "
    "this respondent code was not issued for this consultation"
)


Produce = Callable[[str, str, Any], Awaitable[None]]


@dataclass
class Refused(Exception):
    """A submission refused, with what an HTTP answer or a form page needs to say why."""

    status: int
    title: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """What a respondent gets back: enough to retry safely and to come back and amend."""

    response_id: str
    respondent_token: str
    received_at: datetime
    replayed: bool


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "ingest_responses_total", "Responses received, by outcome.", ["outcome"], registry=registry
        )
        self.produce_seconds = Histogram(
            "ingest_produce_seconds", "Time for Kafka to acknowledge a response (acks=all).", registry=registry
        )


class Submissions:
    """Window, catalogue and consent checks, idempotent replay, then Kafka (acks=all)."""

    def __init__(
        self,
        secret: bytes,
        consultations: Callable[[str], ConsultationDefined | None],
        dataset_status: Callable[[str], DatasetStatus | None],
        produce: Produce,
        store: RespondentStore,
        metrics: IngestMetrics,
        logger: logging.Logger,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._secret = secret
        self._consultations = consultations
        self._dataset_status = dataset_status
        self._produce = produce
        self._store = store
        self._metrics = metrics
        self._logger = logger
        self._clock = clock

    def consultation(self, consultation_id: str) -> ConsultationDefined:
        """The consultation, open now; refused when unknown or outside its window."""
        consultation = self._consultations(consultation_id)
        if consultation is None:
            self._metrics.responses.labels("unknown_consultation").inc()
            raise Refused(
                404,
                "Not Found",
                f"Consultation inconnue : {consultation_id}. / Unknown consultation: {consultation_id}.",
            )
        window = window_at(consultation, self._clock())
        if window is not Window.OPEN:
            self._metrics.responses.labels(window.value).inc()
            detail = (
                "La consultation n'est pas encore ouverte. / The consultation is not open yet."
                if window is Window.NOT_YET_OPEN
                else "La consultation est close. / The consultation is closed."
            )
            raise Refused(
                409,
                "Conflict",
                detail,
                extensions={
                    "window": window.value,
                    "opens_at": consultation.opens_at.isoformat(),
                    "closes_at": consultation.closes_at.isoformat(),
                },
            )
        return consultation

    async def submit(self, consultation_id: str, form: ResponseForm, idempotency_key: str | None) -> Receipt:
        received_at = receipt_time(self._clock())
        self.consultation(consultation_id)
        errors = form_errors(form, self._dataset_status)
        token = form.respondent.token
        if token is not None and not token_valid(self._secret, consultation_id, token):
            errors.append(FieldError("/respondent/token", NOT_ISSUED))
        if errors:
            self._metrics.responses.labels("invalid").inc()
            raise Refused(422, "Invalid request", "Certains champs sont invalides. / Some fields are invalid.", errors)
        client_chose_id = bool(form.response_id or idempotency_key)
        response_id = form.response_id or response_id_for(idempotency_key, str(uuid.uuid4()))
        event, token = accept(form, consultation_id, response_id, received_at, self._secret)
        digest = body_digest(form)
        if client_chose_id:
            previous = await self._store.previous_answer(consultation_id, event.respondent_key, response_id)
            if previous is not None:
                if previous.body_digest != digest:
                    self._metrics.responses.labels("id_reused").inc()
                    raise Refused(
                        422,
                        "Invalid request",
                        "Cet identifiant de réponse a déjà servi pour une autre réponse. / This response "
                        "id was already used for a different response.",
                        [FieldError("/response_id", "already used for a different body")],
                    )
                self._metrics.responses.labels("replayed").inc()
                return Receipt(response_id, token, previous.received_at, replayed=True)
        try:
            with self._metrics.produce_seconds.time():
                await self._produce(RESPONSES_SUBMITTED, partition_key(event), event)
        except Unavailable as error:
            self._metrics.responses.labels("kafka_unavailable").inc()
            self._logger.warning("response not stored", extra={"error": repr(error)})
            raise Unavailable from error
        self._metrics.responses.labels("accepted").inc()
        try:
            await self._store.record(event, form, digest)
        except Exception:
            # Kafka has the response: it is accepted. Only replay and pre-fill miss this one.
            self._logger.exception("accepted response not remembered for replay and pre-fill")
        return Receipt(response_id, token, received_at, replayed=False)

    def token_issued(self, consultation_id: str, token: str) -> bool:
        return token_valid(self._secret, consultation_id, token)

    async def latest_form(self, consultation_id: str, token: str) -> dict[str, Any] | None:
        """The respondent's latest answer, to pre-fill the form: only for a token ingest issued."""
        if not token_valid(self._secret, consultation_id, token):
            return None
        return await self._store.latest_form(consultation_id, respondent_key(self._secret, consultation_id, token))

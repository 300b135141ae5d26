"""Wiring of ingest: the HTTP front door, the Kafka producer (acks=all), the consultations view."""

import asyncio
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Header, HTTPException, Path, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from services.ingest.domain import Window, accept, partition_key, response_id_for, window_at
from services.ingest.settings import IngestSettings
from shared.contracts import ConsultationDefined, ResponseForm, utc_now
from shared.http import ProblemError, service_app
from shared.kafka import StateView, make_broker, prepare_topics
from shared.metrics import make_registry
from shared.service import retry_until
from shared.topics import CONSULTATIONS, RESPONSES_SUBMITTED

SERVICE = "ingest"
CONSULTATION_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
ConsultationId = Annotated[str, Path(pattern=CONSULTATION_ID, description="Consultation id.")]


class ConsultationForm(BaseModel):
    """The body of `PUT /v1/consultations/{id}`."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    opens_at: AwareDatetime = Field(
        description="First instant responses are accepted (ISO 8601 with offset)."
    )
    closes_at: AwareDatetime = Field(
        description="First instant responses are refused (ISO 8601 with offset)."
    )


class Accepted(BaseModel):
    """The answer to an accepted response."""

    response_id: str = Field(description="Id of the submission; retrying with it is safe.")
    respondent_token: str = Field(description="Send it back as respondent.token to amend the response.")
    received_at: AwareDatetime


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "ingest_responses_total", "Responses received, by outcome.", ["outcome"], registry=registry
        )
        self.produce_seconds = Histogram(
            "ingest_produce_seconds",
            "Time for Kafka to acknowledge a response (acks=all).",
            registry=registry,
        )


def create_app(settings: IngestSettings) -> FastAPI:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = IngestMetrics(registry)
    secret = settings.pseudonym_secret.get_secret_value().encode()
    produce_timeout_ms = int(settings.kafka_produce_timeout_s * 1000)
    broker = make_broker(settings, registry, SERVICE, request_timeout_ms=produce_timeout_ms)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to Kafka", broker.start, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        yield
        await consultations.stop()
        await broker.stop()

    async def broker_ready() -> bool:
        return await broker.ping(timeout=2.0)

    async def views_ready() -> bool:
        return consultations.ready.is_set()

    app = service_app(SERVICE, lifespan, {"kafka": broker_ready, "consultations": views_ready}, registry)

    async def produce(topic: str, key: str, event: BaseModel) -> None:
        """Return once every in-sync replica has the message; raise if Kafka cannot take it."""
        with metrics.produce_seconds.time():
            async with asyncio.timeout(settings.kafka_produce_timeout_s + 1):
                await broker.publish(event, topic, key=key.encode())

    def kafka_unavailable() -> ProblemError:
        return ProblemError(
            503,
            "Service Unavailable",
            "The response could not be stored; nothing was recorded. Please retry. / "
            "La réponse n'a pas pu être enregistrée ; rien n'a été conservé. Réessayez.",
            headers={"Retry-After": "5"},
        )

    @app.put("/v1/consultations/{consultation_id}", status_code=200)
    async def define_consultation(
        consultation_id: ConsultationId,
        form: ConsultationForm,
        authorization: Annotated[str | None, Header()] = None,
    ) -> ConsultationDefined:
        """Create or change a consultation (administrators)."""
        expected = f"Bearer {settings.admin_token.get_secret_value()}"
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise ProblemError(
                401,
                "Unauthorized",
                "A valid administrator bearer token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if form.closes_at <= form.opens_at:
            raise ProblemError(
                422,
                "Invalid request",
                "The window is empty.",
                errors=[{"pointer": "/closes_at", "detail": "must be after opens_at"}],
            )
        event = ConsultationDefined(
            event_id=str(uuid.uuid4()),
            occurred_at=utc_now(),
            consultation_id=consultation_id,
            title=form.title,
            opens_at=form.opens_at,
            closes_at=form.closes_at,
        )
        try:
            await produce(CONSULTATIONS, consultation_id, event)
        except (KafkaError, TimeoutError):
            raise kafka_unavailable() from None
        consultations.put(consultation_id, event)
        return event

    @app.get("/v1/consultations/{consultation_id}")
    async def get_consultation(consultation_id: ConsultationId) -> ConsultationDefined:
        """A consultation's definition."""
        consultation = consultations.get(consultation_id)
        if consultation is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        return consultation

    @app.post(
        "/v1/consultations/{consultation_id}/responses",
        status_code=202,
        responses={404: {}, 409: {}, 422: {}, 503: {}},
    )
    async def submit_response(
        consultation_id: ConsultationId,
        form: ResponseForm,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Accepted:
        """Accept a response: 202 only once Kafka has it (acks=all)."""
        received_at = utc_now()
        consultation = consultations.get(consultation_id)
        if consultation is None:
            metrics.responses.labels("unknown_consultation").inc()
            raise ProblemError(
                404, "Not Found", f"Consultation inconnue / unknown consultation: {consultation_id!r}."
            )
        window = window_at(consultation, received_at)
        if window is not Window.OPEN:
            metrics.responses.labels(window.value).inc()
            detail = (
                "La consultation n'est pas encore ouverte. / The consultation is not open yet."
                if window is Window.NOT_YET_OPEN
                else "La consultation est close. / The consultation is closed."
            )
            raise ProblemError(
                409,
                "Conflict",
                detail,
                window=window.value,
                opens_at=consultation.opens_at.isoformat(),
                closes_at=consultation.closes_at.isoformat(),
            )
        response_id = form.response_id or response_id_for(idempotency_key, str(uuid.uuid4()))
        event, token = accept(form, consultation_id, response_id, received_at, secret)
        try:
            await produce(RESPONSES_SUBMITTED, partition_key(event), event)
        except (KafkaError, TimeoutError) as error:
            metrics.responses.labels("kafka_unavailable").inc()
            logger.warning("response not stored", extra={"error": repr(error)})
            raise kafka_unavailable() from None
        metrics.responses.labels("accepted").inc()
        response.headers["Location"] = f"/v1/consultations/{consultation_id}/responses/{response_id}"
        return Accepted(response_id=response_id, respondent_token=token, received_at=received_at)

    return app

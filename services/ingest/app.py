"""Wiring of ingest: the HTTP front door, the Kafka producer (acks=all), its views and store."""

import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from services.ingest.domain import RateLimiter, receipt_time
from services.ingest.followup import FollowUps, followup_router
from services.ingest.gate import Gate
from services.ingest.handlers import SERVICE, ClientContext, IngestMetrics, Receipt, Refused, Submissions
from services.ingest.outbox import GroupCommitProducer, Unavailable
from services.ingest.repository import MongoEmailIdentity, MongoRespondentStore
from services.ingest.settings import IngestSettings
from services.ingest.web import static_files, web_router
from shared.contracts import ConsultationDefined, DatasetCatalogued, DatasetStatus, ResponseForm, utc_now
from shared.edge import client_of
from shared.http import ProblemError, administrators, problem_responses, require_admin, service_app
from shared.kafka import StateView, prepare_topics
from shared.mail import SmtpMailer
from shared.metrics import make_registry
from shared.mongo import make_mongo_client, mongo_ping
from shared.service import retry_until
from shared.topics import CATALOGUE_DATASETS, CONSULTATIONS
from shared.web import DSFR_URL, dsfr_static

CONSULTATION_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
ConsultationId = Annotated[str, Path(pattern=CONSULTATION_ID, description="Consultation id.")]


class ConsultationForm(BaseModel):
    """The body of `PUT /v1/consultations/{id}`."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = Field(
        default=None, description="What the consultation is about, shown to respondents."
    )
    public_rankings: bool = Field(
        default=False, description="Live rankings public while the window is open (staff only otherwise)."
    )
    opens_at: AwareDatetime = Field(description="First instant responses are accepted (ISO 8601 with offset).")
    closes_at: AwareDatetime = Field(description="First instant responses are refused (ISO 8601 with offset).")


class Withdrawal(BaseModel):
    """The body of `POST /v1/consultations/{id}/withdrawal`."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")] = Field(
        description="The respondent token ingest issued: only its holder may withdraw the answer."
    )


class Withdrawn(BaseModel):
    response_id: str = Field(description="Id of the withdrawal.")
    withdrawn: bool = True


class Accepted(BaseModel):
    """The answer to an accepted response."""

    response_id: str = Field(description="Id of the submission; retrying with it is safe.")
    respondent_token: str | None = Field(
        description="Send it back as respondent.token to amend the response (none while pending)."
    )
    received_at: AwareDatetime = Field(description="When ingest received it (the first time, for a retry).")
    amend_url: str | None = Field(description="Where the respondent can come back to amend until the close.")
    pending: bool = Field(
        default=False,
        description="True when the e-mail address had answered before: the response is held, not counted, until "
        "the link sent to that address is followed; only then does it replace the earlier answer.",
    )


def create_app(settings: IngestSettings) -> Any:
    logger = logging.getLogger(SERVICE)
    registry = make_registry()
    metrics = IngestMetrics(registry)
    secret = settings.pseudonym_secret.get_secret_value().encode()
    outbox = GroupCommitProducer(
        settings.kafka_bootstrap,
        f"cod-ingest-{settings.instance or socket.gethostname() + '-' + str(settings.http_port)}",
        settings.kafka_produce_timeout_s,
        logger,
        lanes=settings.commit_lanes,
    )
    mongo = make_mongo_client(settings.mongo_uri, SERVICE)
    store = MongoRespondentStore(mongo, settings.mongo_database, logger)
    consultations = StateView(settings.kafka_bootstrap, CONSULTATIONS, ConsultationDefined, logger)
    catalogue = StateView(settings.kafka_bootstrap, CATALOGUE_DATASETS, DatasetCatalogued, logger)

    async def produce(topic: str, key: str, event: BaseModel) -> None:
        """Return once the message is committed (acks=all); raise `Unavailable` if it never will be."""
        await outbox.send(topic, key, event.model_dump_json().encode())

    def dataset_status(dataset_id: str) -> DatasetStatus | None:
        entry = catalogue.get(dataset_id)
        return None if entry is None or entry.retired else entry.dataset.status

    def amend_url(consultation_id: str, token: str) -> str:
        return f"{settings.public_url}/consultations/{consultation_id}?token={token}"

    def confirm_url(consultation_id: str, pending_id: str, signature: str) -> str:
        return f"{settings.public_url}/consultations/{consultation_id}/confirmation/{pending_id}?jeton={signature}"

    identity = MongoEmailIdentity(mongo, settings.mongo_database)
    submissions = Submissions(
        secret,
        consultations.get,
        dataset_status,
        produce,
        store,
        metrics,
        logger,
        identity,
        SmtpMailer(settings),
        confirm_url,
        timedelta(hours=settings.pending_hours),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_topics(settings, logger)
        await retry_until("connect to MongoDB", store.ping, settings.startup_timeout_s, logger)
        await retry_until("prepare MongoDB", identity.ensure_indexes, settings.startup_timeout_s, logger)
        await retry_until("connect to Kafka", outbox.start, settings.startup_timeout_s, logger)
        await retry_until("read consultations", consultations.start, settings.startup_timeout_s, logger)
        await retry_until("read the catalogue", catalogue.start, settings.startup_timeout_s, logger)
        store.start()
        yield
        await store.stop()
        await catalogue.stop()
        await consultations.stop()
        await outbox.stop()
        await mongo.close()

    async def broker_ready() -> bool:
        return await outbox.ready()

    async def mongo_ready() -> bool:
        return await mongo_ping(mongo)

    async def views_ready() -> bool:
        return consultations.ready.is_set() and catalogue.ready.is_set()

    app = service_app(
        SERVICE, lifespan, {"kafka": broker_ready, "mongodb": mongo_ready, "views": views_ready}, registry
    )
    app.include_router(web_router(settings, submissions, consultations, catalogue, amend_url))
    followups = FollowUps(settings.followup(), submissions.latest_form, outbox.send, logger)
    app.include_router(followup_router(followups, consultations.get, amend_url))
    # Starlette matches mounts in order: the DSFR's prefix must come before the wider "/static".
    app.mount(DSFR_URL, dsfr_static(), name="dsfr")
    app.mount("/static", static_files(), name="static")

    def kafka_unavailable() -> ProblemError:
        return ProblemError(
            503,
            "Service Unavailable",
            "La réponse n'a pas pu être enregistrée ; rien n'a été conservé. Réessayez. / "
            "The response could not be stored; nothing was recorded. Please retry.",
            headers={"Retry-After": "5"},
        )

    @app.put(
        "/v1/consultations/{consultation_id}",
        responses=problem_responses(400, 401, 413, 415, 422, 503),
        tags=["administration"],
        dependencies=[administrators(settings.admin_token.get_secret_value())],
    )
    async def define_consultation(consultation_id: ConsultationId, form: ConsultationForm) -> ConsultationDefined:
        """Create or change a consultation (administrators)."""
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
            description=form.description or None,
            public_rankings=form.public_rankings,
            opens_at=form.opens_at,
            closes_at=form.closes_at,
        )
        return await publish_definition(event)

    async def publish_definition(event: ConsultationDefined) -> ConsultationDefined:
        try:
            await produce(CONSULTATIONS, event.consultation_id, event)
        except Unavailable:
            raise kafka_unavailable() from None
        consultations.put(event.consultation_id, event)
        return event

    @app.post(
        "/v1/consultations/{consultation_id}/close",
        responses=problem_responses(401, 404, 409, 503),
        tags=["administration"],
    )
    async def close_consultation(
        consultation_id: ConsultationId, authorization: Annotated[str | None, Header()] = None
    ) -> ConsultationDefined:
        """Close a consultation now, before its `closes_at` (administrators). From this instant ingest
        refuses responses, and the publisher publishes the results once every earlier one is counted."""
        require_admin(authorization, settings.admin_token.get_secret_value())
        current = consultations.get(consultation_id)
        if current is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        now = receipt_time(utc_now())
        if not current.is_open_at(now):
            raise ProblemError(
                409, "Conflict", "Only an open consultation can be closed early; change its window instead."
            )
        return await publish_definition(
            current.model_copy(update={"event_id": str(uuid.uuid4()), "occurred_at": now, "closes_at": now})
        )

    @app.get("/v1/consultations/{consultation_id}", responses=problem_responses(404), tags=["consultations"])
    async def get_consultation(consultation_id: ConsultationId) -> ConsultationDefined:
        """A consultation's definition."""
        consultation = consultations.get(consultation_id)
        if consultation is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        return consultation

    @app.post(
        "/v1/consultations/{consultation_id}/responses",
        status_code=202,
        responses=problem_responses(400, 404, 409, 413, 415, 422, 429, 503),
        tags=["responses"],
    )
    async def submit_response(
        consultation_id: ConsultationId,
        form: ResponseForm,
        request: Request,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Accepted:
        """Accept a response: 202 only once Kafka has it (acks=all). Retrying with the same
        `response_id` (or `Idempotency-Key`) returns the same answer and is counted once."""
        try:
            client = ClientContext(
                client_of(request.scope, settings.trusted_proxies), request.headers.get("user-agent")
            )
            receipt: Receipt = await submissions.submit(consultation_id, form, idempotency_key, client)
        except Refused as refused:
            raise refused.problem() from None
        except Unavailable:
            raise kafka_unavailable() from None
        response.headers["Location"] = f"/v1/consultations/{consultation_id}/responses/{receipt.response_id}"
        token = receipt.respondent_token
        return Accepted(
            response_id=receipt.response_id,
            respondent_token=token,
            received_at=receipt.received_at,
            amend_url=amend_url(consultation_id, token) if token else None,
            pending=receipt.pending,
        )

    @app.post(
        "/v1/consultations/{consultation_id}/withdrawal",
        status_code=202,
        responses=problem_responses(400, 404, 409, 413, 415, 422, 429, 503),
        tags=["responses"],
    )
    async def withdraw(consultation_id: ConsultationId, body: Withdrawal) -> Withdrawn:
        """Withdraw a response with its respondent token, before the close: it leaves every ranking and the
        published archive. Answering again later (with the same token) counts again."""
        try:
            receipt = await submissions.withdraw(consultation_id, body.token)
        except Refused as refused:
            raise refused.problem() from None
        except Unavailable:
            raise kafka_unavailable() from None
        return Withdrawn(response_id=receipt.response_id)

    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    return Gate(
        app,
        settings.max_body_bytes,
        limiter,
        settings.trusted_proxies,
        refused=lambda reason: metrics.responses.labels(reason).inc(),
    )

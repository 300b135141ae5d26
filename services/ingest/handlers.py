"""Accepting a submission, whether it comes from the JSON API or the web form; defining and closing a
consultation."""

import asyncio
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.ingest.domain import (
    ClientSignals,
    FieldError,
    Window,
    accept,
    agent_family,
    body_digest,
    email_hash,
    fill_seconds,
    form_errors,
    form_stamp,
    network_of,
    partition_key,
    pending_id_for,
    pending_signature,
    receipt_time,
    respondent_key,
    response_id_for,
    token_nonce,
    token_of,
    token_valid,
    window_at,
)
from services.ingest.outbox import Unavailable
from services.ingest.repository import EmailIdentity, RespondentStore
from shared.contracts import ConsultationDefined, DatasetStatus, Profile, ResponseForm, ResponseSubmitted, utc_now
from shared.http import ProblemError
from shared.topics import CONSULTATIONS, RESPONSES_SUBMITTED

SERVICE = "ingest"
EMPTY_WINDOW = "doit être postérieure à opens_at / must be after opens_at"
NOT_ISSUED = (
    "ce code de répondant n'a pas été délivré pour cette consultation / "
    "this respondent code was not issued for this consultation"
)


T = TypeVar("T")


class Produce(Protocol):
    """Kafka, as ingest writes to it: returns once committed, raises `Unavailable` if not by `deadline`."""

    async def __call__(self, topic: str, key: str, event: Any, deadline: float | None = None) -> None: ...


async def _in_sync() -> None:
    """A consultations view that is always up to date (one process, or a test's view filled by hand)."""


@dataclass
class Refused(Exception):
    """A submission refused, with what an HTTP answer or a form page needs to say why."""

    status: int
    title: str
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extensions: dict[str, str] = field(default_factory=dict)

    def problem(self) -> ProblemError:
        """The refusal as the API answers it: problem details listing each bad field."""
        errors = [e.as_dict() for e in self.errors] if self.errors else None
        return ProblemError(self.status, self.title, self.detail, errors=errors, extensions=self.extensions)


@dataclass(frozen=True)
class Receipt:
    """What a respondent gets back: enough to retry safely and to come back and amend; or, when their
    address answered before, word that a confirmation link was sent to it (`pending`)."""

    response_id: str
    respondent_token: str | None
    received_at: datetime
    replayed: bool
    pending: bool = False


@dataclass(frozen=True)
class ClientContext:
    """What the HTTP layer knows of a submission's client: its address (behind the trusted proxies),
    its User-Agent, and the web form's stamp. Only coarse, keyed signals of it reach the event."""

    address: str
    user_agent: str | None = None
    form_stamp: str | None = None


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


CONFIRM_SUBJECT = "Confirmez votre nouvelle réponse / Confirm your new response"
CONFIRM_BODY = """Bonjour,

Une réponse à la consultation a été envoyée avec votre adresse, qui avait déjà répondu. Pour qu'elle
remplace votre réponse précédente, suivez ce lien (valable 48 heures) :

{link}

Si vous n'êtes pas à l'origine de cet envoi, ignorez ce message : votre réponse précédente reste comptée.

---

Hello,

A response to the consultation was sent with your address, which had already answered. To have it
replace your previous response, follow this link (valid for 48 hours):

{link}

If you did not send it, ignore this message: your previous response stays counted.
"""


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.responses = Counter(
            "ingest_responses_total", "Responses received, by outcome.", ["outcome"], registry=registry
        )
        self.produce_seconds = Histogram(
            "ingest_produce_seconds", "Time for Kafka to acknowledge a response (acks=all).", registry=registry
        )

    def refused(self, reason: str) -> None:
        """Count a response the HTTP gate refused before it reached a route."""
        self.responses.labels(reason).inc()


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
        identity: EmailIdentity,
        mailer: Mailer,
        confirm_url: Callable[[str, str, str], str],
        pending_for: timedelta = timedelta(hours=48),
        clock: Callable[[], datetime] = utc_now,
        deadline_s: float = 5.0,
        consultations_synced: Callable[[], Awaitable[None]] = _in_sync,
    ) -> None:
        self._secret = secret
        self._consultations = consultations
        self._dataset_status = dataset_status
        self._produce = produce
        self._store = store
        self._metrics = metrics
        self._logger = logger
        self._identity = identity
        self._mailer = mailer
        self._confirm_url = confirm_url
        self._pending_for = pending_for
        self._clock = clock
        self._deadline_s = deadline_s
        self._synced = consultations_synced

    def consultation(self, consultation_id: str, at: datetime | None = None) -> ConsultationDefined:
        """The consultation, open now (or `at`); refused when unknown or outside its window."""
        consultation = self._consultations(consultation_id)
        if consultation is None:
            self._metrics.responses.labels("unknown_consultation").inc()
            raise Refused(
                404,
                "Not Found",
                f"Consultation inconnue : {consultation_id}. / Unknown consultation: {consultation_id}.",
            )
        window = window_at(consultation, at or self._clock())
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

    async def submit(
        self,
        consultation_id: str,
        form: ResponseForm,
        idempotency_key: str | None,
        client: ClientContext | None = None,
    ) -> Receipt:
        received_at = receipt_time(self._clock())
        # Every wait before the answer counts against this one deadline (see `ServiceSettings.settle_s`).
        deadline = asyncio.get_running_loop().time() + self._deadline_s
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
        try:
            return await self._submit(
                consultation_id, form, response_id, received_at, deadline, client_chose_id, client
            )
        except Unavailable as error:
            # The id the response was (or may have been) produced with, so that a retry with it counts once.
            raise Unavailable(str(error), may_be_recorded=error.may_be_recorded, response_id=response_id) from error

    async def _submit(
        self,
        consultation_id: str,
        form: ResponseForm,
        response_id: str,
        received_at: datetime,
        deadline: float,
        client_chose_id: bool,
        client: ClientContext | None,
    ) -> Receipt:
        email = form.respondent.email
        digest = email_hash(self._secret, consultation_id, email) if email else None
        if form.respondent.token is None and email and digest:
            nonce = await self._bounded(deadline, self._identity.nonce(consultation_id, digest))
            if nonce is not None:  # the address answered before: only its owner may replace that answer
                return await self._bounded(
                    deadline, self._hold(consultation_id, form, response_id, received_at, email, digest)
                )
        signals = None
        if client is not None:
            signals = ClientSignals(
                network_of(client.address),
                agent_family(client.user_agent),
                fill_seconds(self._secret, consultation_id, client.form_stamp, received_at),
            )
        receipt = await self._accept(
            consultation_id, form, response_id, received_at, deadline, client_chose_id, signals
        )
        if digest and not receipt.replayed and receipt.respondent_token:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._identity.remember(consultation_id, digest, token_nonce(receipt.respondent_token))
            except Exception:
                self._logger.exception("the address of an accepted response not remembered")
        return receipt

    async def _accept(
        self,
        consultation_id: str,
        form: ResponseForm,
        response_id: str,
        received_at: datetime,
        deadline: float,
        client_chose_id: bool,
        signals: ClientSignals | None = None,
    ) -> Receipt:
        event, token = accept(form, consultation_id, response_id, received_at, self._secret, signals)
        digest = body_digest(form)
        if client_chose_id:
            previous = await self._bounded(
                deadline, self._store.previous_answer(consultation_id, event.respondent_key, response_id)
            )
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
        await self._produce_event(RESPONSES_SUBMITTED, partition_key(event), event, deadline)
        await self._still_open_at(consultation_id, received_at, deadline)
        self._metrics.responses.labels("accepted").inc()
        try:
            await self._store.record(event, form, digest)
        except Exception:
            # Kafka has the response: it is accepted. Only replay and pre-fill miss this one.
            self._logger.exception("accepted response not remembered for replay and pre-fill")
        return Receipt(response_id, token, received_at, replayed=False)

    async def _produce_event(self, topic: str, key: str, event: ResponseSubmitted, deadline: float) -> None:
        try:
            with self._metrics.produce_seconds.time():
                await self._produce(topic, key, event, deadline)
        except Unavailable as error:
            self._metrics.responses.labels("kafka_unavailable").inc()
            self._logger.warning("response not stored", extra={"error": repr(error)})
            raise Unavailable(str(error), may_be_recorded=error.may_be_recorded) from error

    async def _bounded(self, deadline: float, step: Awaitable[T]) -> T:
        """A step before the response is produced, within its deadline: past it, 503 and nothing produced."""
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except TimeoutError:
            self._metrics.responses.labels("deadline").inc()
            raise Unavailable("the deadline passed before the response was produced") from None

    async def _still_open_at(self, consultation_id: str, received_at: datetime, deadline: float) -> None:
        """After the commit, with this process's view of the consultations caught up with every close
        committed until then (on any replica): refused if the window had closed at `received_at`.
        Downstream drops such a response too (`ConsultationDefined.is_open_at`)."""
        try:
            async with asyncio.timeout_at(deadline):
                await self._synced()
        except Exception as error:
            self._metrics.responses.labels("deadline").inc()
            raise Unavailable(f"consultations not read in time: {error!r}", may_be_recorded=True) from error
        self.consultation(consultation_id, received_at)

    async def _hold(
        self, consultation_id: str, form: ResponseForm, response_id: str, received_at: datetime, email: str, digest: str
    ) -> Receipt:
        """Hold the answer and send the address a link: following it replaces the earlier answer."""
        pending_id = pending_id_for(self._secret, consultation_id, response_id)
        held = {
            "consultation_id": consultation_id,
            "response_id": response_id,
            "email_hash": digest,
            "form": form.model_dump(mode="json", exclude={"respondent": {"token", "email"}}),
            "received_at": received_at,
            "expires_at": received_at + self._pending_for,
        }
        if not await self._identity.hold(pending_id, held):
            link = self._confirm_url(
                consultation_id, pending_id, pending_signature(self._secret, consultation_id, pending_id)
            )
            try:
                await self._mailer.send(email, CONFIRM_SUBJECT, CONFIRM_BODY.format(link=link))
            except Exception as error:
                self._metrics.responses.labels("mail_unavailable").inc()
                self._logger.warning("confirmation e-mail not sent", extra={"error": type(error).__name__})
                raise Unavailable from error
            await self._identity.mailed(pending_id)
        self._metrics.responses.labels("pending").inc()
        return Receipt(response_id, None, received_at, replayed=False, pending=True)

    async def confirm(self, consultation_id: str, pending_id: str, signature: str) -> Receipt:
        """Follow a confirmation link: the held answer replaces the earlier answer of its address."""
        expected = pending_signature(self._secret, consultation_id, pending_id)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise Refused(403, "Forbidden", "Ce lien n'est pas valide. / This link is not valid.")
        held = await self._identity.held(pending_id)
        if held is None or held["consultation_id"] != consultation_id:
            raise Refused(
                404,
                "Not Found",
                "Ce lien a déjà servi ou a expiré. / This link was already used or has expired.",
            )
        self.consultation(consultation_id)
        nonce = await self._identity.nonce(consultation_id, held["email_hash"])
        if nonce is None:
            raise Refused(404, "Not Found", "Réponse inconnue. / Unknown response.")
        form_data = held["form"]
        form_data["respondent"]["token"] = token_of(self._secret, consultation_id, nonce)
        form = ResponseForm.model_validate(form_data)
        deadline = asyncio.get_running_loop().time() + self._deadline_s
        receipt = await self._accept(
            consultation_id, form, held["response_id"], receipt_time(self._clock()), deadline, client_chose_id=True
        )
        await self._identity.release(pending_id)
        return receipt

    async def withdraw(self, consultation_id: str, token: str) -> Receipt:
        """Withdraw a respondent's answer with their link, before the close: it leaves every ranking."""
        self.consultation(consultation_id)
        if not token_valid(self._secret, consultation_id, token):
            raise Refused(422, "Invalid request", NOT_ISSUED, [FieldError("/token", NOT_ISSUED)])
        key = respondent_key(self._secret, consultation_id, token)
        received_at = receipt_time(self._clock())
        deadline = asyncio.get_running_loop().time() + self._deadline_s
        stored = await self._bounded(deadline, self._store.latest_form(consultation_id, key))
        profile = Profile(stored["respondent"]["profile"]) if stored else Profile.OTHER
        response_id = uuid.uuid4().hex
        event = ResponseSubmitted(
            event_id=response_id,
            occurred_at=received_at,
            consultation_id=consultation_id,
            response_id=response_id,
            respondent_key=key,
            profile=profile,
            received_at=received_at,
            withdrawn=True,
        )
        await self._produce_event(RESPONSES_SUBMITTED, partition_key(event), event, deadline)
        await self._still_open_at(consultation_id, received_at, deadline)
        self._metrics.responses.labels("withdrawn").inc()
        try:
            await self._store.forget(consultation_id, key)
        except Exception:
            self._logger.exception("a withdrawn answer's form not forgotten")
        return Receipt(response_id, token, received_at, replayed=False)

    def form_stamp(self, consultation_id: str) -> str:
        """The signed instant the web form is served at: sent back, it tells how long filling took."""
        return form_stamp(self._secret, consultation_id, self._clock())

    def token_issued(self, consultation_id: str, token: str) -> bool:
        return token_valid(self._secret, consultation_id, token)

    async def latest_form(self, consultation_id: str, token: str) -> dict[str, Any] | None:
        """The respondent's latest answer, to pre-fill the form: only for a token ingest issued."""
        if not token_valid(self._secret, consultation_id, token):
            return None
        return await self._store.latest_form(consultation_id, respondent_key(self._secret, consultation_id, token))


class ConsultationTable(Protocol):
    """This process's view of the consultations: read, and told at once of a definition it produced."""

    def get(self, key: str) -> ConsultationDefined | None: ...

    def put(self, key: str, value: ConsultationDefined) -> None: ...


@dataclass
class Definitions:
    """Defining a consultation, or closing it early: produced (acks=all), then applied to this process's view
    without waiting for it to come back from the topic."""

    produce: Produce
    consultations: ConsultationTable
    clock: Callable[[], datetime] = utc_now
    deadline_s: float = 5.0

    async def define(
        self,
        consultation_id: str,
        title: str,
        description: str | None,
        public_rankings: bool,
        opens_at: datetime,
        closes_at: datetime,
    ) -> ConsultationDefined:
        """Create or change a consultation; refused when its window is empty."""
        if closes_at <= opens_at:
            raise Refused(
                422,
                "Invalid request",
                "La fenêtre est vide. / The window is empty.",
                [FieldError("/closes_at", EMPTY_WINDOW)],
            )
        event = ConsultationDefined(
            event_id=str(uuid.uuid4()),
            occurred_at=self.clock(),
            consultation_id=consultation_id,
            title=title,
            description=description or None,
            public_rankings=public_rankings,
            opens_at=opens_at,
            closes_at=closes_at,
        )
        return await self._publish(event)

    async def close(self, consultation_id: str) -> ConsultationDefined:
        """Close an open consultation: its `closes_at` becomes this instant plus the accept deadline, and
        the answer comes once that instant has passed.

        The close is committed within the deadline (or not at all), so before `closes_at`: a replica that
        commits a response received at or after `closes_at` then finds the close in the topic when it
        catches up (`Submissions._still_open_at`), and never answers 202 for it."""
        current = self.consultations.get(consultation_id)
        if current is None:
            raise Refused(404, "Not Found", f"No consultation {consultation_id!r}.")
        now = receipt_time(self.clock())
        if not current.is_open_at(now):
            raise Refused(409, "Conflict", "Only an open consultation can be closed early; change its window instead.")
        deadline = asyncio.get_running_loop().time() + self.deadline_s
        closes_at = min(now + timedelta(seconds=self.deadline_s), current.closes_at)
        update = {"event_id": str(uuid.uuid4()), "occurred_at": now, "closes_at": closes_at}
        closed = await self._publish(current.model_copy(update=update), deadline)
        await asyncio.sleep(max(0.0, (closes_at - self.clock()).total_seconds()))
        return closed

    async def _publish(self, event: ConsultationDefined, deadline: float | None = None) -> ConsultationDefined:
        await self.produce(CONSULTATIONS, event.consultation_id, event, deadline)
        self.consultations.put(event.consultation_id, event)
        return event

"""Ingest's rules: the consultation window, respondent identity, the accepted response."""

import base64
import hashlib
import hmac
from datetime import datetime
from enum import StrEnum

from shared.contracts import ConsultationDefined, ResponseForm, ResponseSubmitted


class Window(StrEnum):
    NOT_YET_OPEN = "not_yet_open"
    OPEN = "open"
    CLOSED = "closed"


def window_at(consultation: ConsultationDefined, instant: datetime) -> Window:
    """Where `instant` falls: the window is [opens_at, closes_at)."""
    if instant < consultation.opens_at:
        return Window.NOT_YET_OPEN
    if instant >= consultation.closes_at:
        return Window.CLOSED
    return Window.OPEN


def _keyed_hash(secret: bytes, *parts: str) -> bytes:
    return hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def response_id_for(idempotency_key: str | None, random_id: str) -> str:
    """The submission's id: derived from the client's Idempotency-Key when it sends one."""
    if idempotency_key:
        digest = hashlib.sha256(idempotency_key.encode()).digest()[:16]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return random_id


def respondent_token(secret: bytes, consultation_id: str, response_id: str) -> str:
    """The token given to a respondent who brought none: derived from the submission, so a
    retried POST gets the same token and stays one respondent."""
    digest = _keyed_hash(secret, "token", consultation_id, response_id)[:24]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def respondent_key(secret: bytes, consultation_id: str, token: str) -> str:
    """Pseudonymous respondent identity: nothing past ingest can recover the token from it."""
    return _keyed_hash(secret, "respondent", consultation_id, token).hex()[:32]


def accept(
    form: ResponseForm, consultation_id: str, response_id: str, received_at: datetime, secret: bytes
) -> tuple[ResponseSubmitted, str]:
    """The event of an accepted response, and the respondent token to hand back."""
    token = form.respondent.token or respondent_token(secret, consultation_id, response_id)
    event = ResponseSubmitted(
        event_id=response_id,
        occurred_at=received_at,
        consultation_id=consultation_id,
        response_id=response_id,
        respondent_key=respondent_key(secret, consultation_id, token),
        profile=form.respondent.profile,
        organisation=form.respondent.organisation,
        received_at=received_at,
        open_requests=form.open_requests,
        improvement_requests=form.improvement_requests,
        suggestions=form.suggestions,
    )
    return event, token


def partition_key(event: ResponseSubmitted) -> str:
    """All submissions of one respondent share a partition, so they stay in order."""
    return f"{event.consultation_id}:{event.respondent_key}"

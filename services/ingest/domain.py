"""Ingest's rules: the consultation window, respondent identity, catalogue checks, rate limits."""

import base64
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.contracts import (
    PRIVACY_NOTICE,
    ConsultationDefined,
    DatasetStatus,
    ResponseForm,
    ResponseSubmitted,
)


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


def receipt_time(now: datetime) -> datetime:
    """Receipt times are kept to the millisecond, the resolution of every store they reach."""
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class FieldError:
    """A bad field: its JSON pointer in the request, and what is wrong, in French then English."""

    pointer: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail}


def _keyed_hash(secret: bytes, *parts: str) -> bytes:
    return hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def _url_safe(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def response_id_for(idempotency_key: str | None, random_id: str) -> str:
    """The submission's id: derived from the client's Idempotency-Key when it sends one."""
    if idempotency_key:
        return _url_safe(hashlib.sha256(idempotency_key.encode()).digest()[:16])
    return random_id


def email_hash(secret: bytes, consultation_id: str, email: str) -> str:
    """Keyed hash of a normalised e-mail: equal for the same address, useless without the key."""
    return _keyed_hash(secret, "email", consultation_id, email.strip().casefold()).hex()


TOKEN_PART_BYTES = 12


def respondent_token(secret: bytes, consultation_id: str, response_id: str) -> str:
    """The token ingest issues to a respondent who brought none: a nonce drawn from the submission
    (so a retried POST gets the same one back) and its signature. Knowing an e-mail address, or
    anything else a client can type, never yields it."""
    return token_of(secret, consultation_id, token_nonce_for(secret, consultation_id, response_id))


def token_nonce_for(secret: bytes, consultation_id: str, response_id: str) -> bytes:
    return _keyed_hash(secret, "nonce", consultation_id, response_id)[:TOKEN_PART_BYTES]


def token_of(secret: bytes, consultation_id: str, nonce: bytes) -> str:
    """A signed token: its nonce and a keyed signature of it, checked without any lookup."""
    return _url_safe(nonce + _keyed_hash(secret, "token", consultation_id, nonce.hex())[:TOKEN_PART_BYTES])


def token_valid(secret: bytes, consultation_id: str, token: str) -> bool:
    """Whether ingest issued this token for this consultation (an invented one is refused)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return False
    if len(raw) != 2 * TOKEN_PART_BYTES:
        return False
    nonce, signature = raw[:TOKEN_PART_BYTES], raw[TOKEN_PART_BYTES:]
    expected = _keyed_hash(secret, "token", consultation_id, nonce.hex())[:TOKEN_PART_BYTES]
    return hmac.compare_digest(signature, expected)


def pending_id_for(secret: bytes, consultation_id: str, response_id: str) -> str:
    """The id of an answer held for its address's confirmation: a retried POST holds the same one."""
    return _url_safe(_keyed_hash(secret, "pending", consultation_id, response_id)[:18])


def pending_signature(secret: bytes, consultation_id: str, pending_id: str) -> str:
    """What the confirmation link carries besides the id: only the e-mail sent to the address has it."""
    return _url_safe(_keyed_hash(secret, "confirm", consultation_id, pending_id)[:18])


def token_nonce(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[:TOKEN_PART_BYTES]


def respondent_key(secret: bytes, consultation_id: str, token: str) -> str:
    """Pseudonymous respondent identity: nothing past ingest can recover the token from it."""
    return _keyed_hash(secret, "respondent", consultation_id, token).hex()[:32]


def body_digest(form: ResponseForm) -> str:
    """A fingerprint of what was submitted, to tell a retry from a reuse of its id."""
    canonical = json.dumps(form.model_dump(mode="json", exclude={"response_id"}), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ClientSignals:
    """What ingest tells of a submission's client, coarse on purpose: its network and browser family
    (hashed with a key before they travel), and how long the form took to fill when the form says."""

    network: str
    agent_family: str
    fill_seconds: float | None = None


AGENT_FAMILIES = (
    ("edg/", "edge"),
    ("opr/", "opera"),
    ("firefox/", "firefox"),
    ("chrome/", "chrome"),
    ("chromium/", "chrome"),
    ("safari/", "safari"),
    ("curl/", "curl"),
    ("wget/", "wget"),
    ("python", "python"),
    ("httpx", "python"),
    ("go-http-client", "go"),
    ("java", "java"),
    ("bot", "bot"),
    ("spider", "bot"),
)


def agent_family(user_agent: str | None) -> str:
    """The browser or tool family a User-Agent names (its first match in a fixed list), never the string."""
    text = (user_agent or "").lower()
    if not text:
        return "none"
    return next((family for marker, family in AGENT_FAMILIES if marker in text), "other")


def network_of(client: str) -> str:
    """The client's network: its IPv4 /24 or IPv6 /48 (from an address or a wider key of one)."""
    try:
        network = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return client
    return (
        str(network.supernet(new_prefix=24 if network.version == 4 else 48))
        if network.prefixlen > (24 if network.version == 4 else 48)
        else str(network)
    )


def client_fingerprint(secret: bytes, consultation_id: str, signals: ClientSignals) -> str:
    """A keyed hash of the network and browser family: it groups clients without naming any."""
    return _keyed_hash(secret, "client", consultation_id, signals.network, signals.agent_family).hex()[:20]


def form_stamp(secret: bytes, consultation_id: str, served_at: datetime) -> str:
    """What the web form carries of the instant it was served, signed so a client cannot forge it."""
    millis = str(int(served_at.timestamp() * 1000))
    return f"{millis}.{_url_safe(_keyed_hash(secret, 'served', consultation_id, millis)[:12])}"


def fill_seconds(secret: bytes, consultation_id: str, stamp: str | None, sent_at: datetime) -> float | None:
    """Seconds between the form being served and sent, from its stamp; None for a missing or forged one."""
    millis, _, signature = (stamp or "").partition(".")
    if not millis.isdigit():
        return None
    expected = _url_safe(_keyed_hash(secret, "served", consultation_id, millis)[:12])
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return max(0.0, round(sent_at.timestamp() - int(millis) / 1000, 3))


def accept(
    form: ResponseForm,
    consultation_id: str,
    response_id: str,
    received_at: datetime,
    secret: bytes,
    signals: ClientSignals | None = None,
) -> tuple[ResponseSubmitted, str]:
    """The event of an accepted response, and the respondent token to hand back. The event carries
    what downstream services use and no more: no organisation, territory or e-mail hash."""
    respondent = form.respondent
    token = respondent.token or respondent_token(secret, consultation_id, response_id)
    event = ResponseSubmitted(
        event_id=response_id,
        occurred_at=received_at,
        consultation_id=consultation_id,
        response_id=response_id,
        respondent_key=respondent_key(secret, consultation_id, token),
        profile=respondent.profile,
        privacy_notice=form.consent.notice,
        received_at=received_at,
        open_requests=form.open_requests,
        improvement_requests=form.improvement_requests,
        suggestions=form.suggestions,
        platform=form.platform,
        client_fingerprint=client_fingerprint(secret, consultation_id, signals) if signals else None,
        fill_seconds=signals.fill_seconds if signals else None,
    )
    return event, token


def partition_key(event: ResponseSubmitted) -> str:
    """All submissions of one respondent share a partition, so they stay in order."""
    return f"{event.consultation_id}:{event.respondent_key}"


def form_errors(
    form: ResponseForm, status_of: Callable[[str], DatasetStatus | None], notice_in_force: str = PRIVACY_NOTICE
) -> list[FieldError]:
    """What the catalogue and the privacy notice refuse in an otherwise well-formed response."""
    errors = []
    for index, request in enumerate(form.open_requests):
        status = status_of(request.dataset_id)
        pointer = f"/open_requests/{index}/dataset_id"
        if status is None:
            errors.append(FieldError(pointer, _unknown(request.dataset_id)))
        elif status is DatasetStatus.OPEN:
            errors.append(
                FieldError(
                    pointer,
                    f"Le jeu de données {request.dataset_id} est déjà ouvert : demandez plutôt son "
                    f"amélioration. / Dataset {request.dataset_id} is already open: ask for it to be "
                    "improved instead.",
                )
            )
    for index, improvement in enumerate(form.improvement_requests):
        status = status_of(improvement.dataset_id)
        pointer = f"/improvement_requests/{index}/dataset_id"
        if status is None:
            errors.append(FieldError(pointer, _unknown(improvement.dataset_id)))
        elif status is DatasetStatus.NOT_OPEN:
            errors.append(
                FieldError(
                    pointer,
                    f"Le jeu de données {improvement.dataset_id} n'est pas encore ouvert : demandez plutôt "
                    f"son ouverture. / Dataset {improvement.dataset_id} is not open yet: ask for it to be "
                    "opened instead.",
                )
            )
    if form.consent.notice != notice_in_force:
        errors.append(
            FieldError(
                "/consent/notice",
                f"La notice de confidentialité en vigueur est la version {notice_in_force}. / The privacy "
                f"notice in force is version {notice_in_force}.",
            )
        )
    return errors


def _unknown(dataset_id: str) -> str:
    return f"Le jeu de données {dataset_id} n'est pas au catalogue. / Dataset {dataset_id} is not in the catalogue."


class RateLimiter:
    """A token bucket per client: `burst` requests at once, refilled at `per_minute`.

    In memory, per replica: the limit a client meets is per replica it reaches."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, client: str, now: float) -> float | None:
        """None when the request may go; else the seconds until it may."""
        tokens, last = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self._rate if self._rate > 0 else 3600.0
        if len(self._buckets) >= self._max_clients and client not in self._buckets:
            self._forget_full_buckets(now)
        self._buckets[client] = (tokens - 1.0, now)
        return None

    def _forget_full_buckets(self, now: float) -> None:
        """A bucket that has refilled carries no information: drop those to bound memory."""
        full_after = self._burst / self._rate if self._rate > 0 else float("inf")
        self._buckets = {c: (t, last) for c, (t, last) in self._buckets.items() if now - last < full_after}

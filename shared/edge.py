"""What every service answers at its edge, whatever the route: security headers on every response,
form posts from other sites refused, and failed administrator authentications throttled."""

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http import problem
from shared.settings import ServiceSettings

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
# What a browser may send from a page of the same site (or typed by the person: "none").
SAME_SITE_FETCH = {"same-origin", "none"}


def security_headers(settings: ServiceSettings) -> list[tuple[bytes, bytes]]:
    """The headers added to every response. `frame-ancestors` lets the ministry's site embed the form."""
    policy = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {settings.frame_ancestors}"
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if settings.frame_ancestors.strip() == "'none'":
        headers["X-Frame-Options"] = "DENY"
    if settings.environment == "production":
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


def foreign_form_post(headers: Headers) -> bool:
    """A form POST a browser sent from another site: refused, whatever its cookies or tokens say."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in FORM_TYPES:
        return False
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in SAME_SITE_FETCH
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser, or an old one: the CSRF tokens still apply
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


def client_key(peer: str, forwarded_for: str | None, trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """Who a request comes from, for the rate limit: walking X-Forwarded-For from the right, the first
    address that is not a trusted proxy (the client writes the left-most entries, so they count for
    nothing); the peer itself when it is not a trusted proxy. An IPv6 client is keyed by its /64."""
    chain = [part.strip() for part in (forwarded_for or "").split(",") if part.strip()] + [peer]
    for candidate in reversed(chain):
        try:
            address = ip_address(candidate)
        except ValueError:
            return candidate  # not an address: keyed as it is rather than trusted
        if any(address in network for network in trusted):
            continue
        if address.version == 6:
            return str(ip_network(f"{address}/64", strict=False))
        return str(address)
    return chain[0]


def client_of(scope: Scope, trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client of a request, as `client_key` finds it behind the trusted proxies."""
    peer = scope.get("client")
    return client_key(str(peer[0]) if peer else "unknown", Headers(scope=scope).get("x-forwarded-for"), trusted)


class AdminThrottle:
    """At most `limit` failed administrator authentications per client and minute (per replica)."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - 60:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

    def retry_after(self, client: str) -> float | None:
        failures = self._recent(client)
        if len(failures) < self._limit:
            return None
        return failures[0] + 60 - self._clock()

    def failed(self, client: str) -> None:
        self._recent(client)
        self._failures.setdefault(client, deque()).append(self._clock())


class Edge:
    def __init__(self, app: ASGIApp, settings: ServiceSettings, throttle: AdminThrottle | None = None) -> None:
        self._app = app
        self._headers = security_headers(settings)
        self._throttle = throttle or AdminThrottle(settings.admin_failures_per_minute)
        self._trusted = list(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = client_of(scope, self._trusted)
        if scope["method"] == "POST" and foreign_form_post(headers):
            refused = PlainTextResponse(
                "Formulaire envoyé depuis un autre site : refusé. / Form sent from another site: refused.", 403
            )
            await self._with_headers(refused)(scope, receive, send)
            return
        presents_token = headers.get("authorization", "").lower().startswith("bearer ")
        if presents_token:
            wait = self._throttle.retry_after(client)
            if wait is not None:
                seconds = str(max(1, math.ceil(wait)))
                throttled = problem(
                    429,
                    "Too Many Requests",
                    "Too many failed administrator authentications from this client.",
                    headers={"Retry-After": seconds},
                )
                await self._with_headers(throttled)(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if presents_token and message["status"] == 401:
                    self._throttle.failed(client)
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in self._headers if header[0] not in present
                ]
            await send(message)

        await self._app(scope, receive, send_with_headers)

    def _with_headers(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = list(message.get("headers", [])) + self._headers
                await send(message)

            await app(scope, receive, sending)

        return wrapped

"""The front gate of ingest: body size (413), content type (415) and rate (429), before any parsing."""

import math
import re
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.domain import RateLimiter
from shared.edge import client_key
from shared.http import problem

SUBMISSION_PATH = re.compile(r"^(/v1)?/consultations/[^/]+(/responses)?/?$")
JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]*\+)?json$")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _refusal(scope: Scope, status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    if scope["path"].startswith("/v1/"):
        return problem(status, title, detail, headers=headers)
    page = f'<!doctype html><html lang="fr"><title>{title}</title><main><h1>{title}</h1><p>{detail}</p></main></html>'
    return HTMLResponse(page, status_code=status, headers=headers)


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        limiter: RateLimiter,
        trusted_proxies: Sequence[IPv4Network | IPv6Network],
        refused: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._refused = refused
        self._max = max_body_bytes
        self._limiter = limiter
        self._trusted = list(trusted_proxies)
        self._clock = clock

    def _client(self, scope: Scope) -> str:
        peer = scope.get("client")
        return client_key(str(peer[0]) if peer else "unknown", _header(scope, b"x-forwarded-for"), self._trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self._app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._too_large(scope, receive, send)
            return
        has_body = (declared is not None and declared != "0") or _header(scope, b"transfer-encoding") is not None
        if scope["path"].startswith("/v1/") and has_body:
            media_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if not JSON_TYPE.match(media_type):
                self._refused("unsupported_media_type")
                await _refusal(
                    scope,
                    415,
                    "Unsupported Media Type",
                    "Le corps doit être du JSON (application/json). / The body must be JSON (application/json).",
                )(scope, receive, send)
                return
        if scope["method"] == "POST" and SUBMISSION_PATH.match(scope["path"]):
            wait = self._limiter.retry_after(self._client(scope), self._clock())
            if wait is not None:
                self._refused("rate_limited")
                seconds = str(max(1, math.ceil(wait)))
                await _refusal(
                    scope,
                    429,
                    "Too Many Requests",
                    f"Trop de réponses envoyées ; réessayez dans {seconds} s. / Too many submissions; "
                    f"retry in {seconds} s.",
                    headers={"Retry-After": seconds},
                )(scope, receive, send)
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self._max:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._refused("too_large")
        kib = self._max // 1024
        await _refusal(
            scope,
            413,
            "Content Too Large",
            f"La réponse dépasse {kib} Kio. / The submission exceeds {kib} KiB.",
        )(scope, receive, send)

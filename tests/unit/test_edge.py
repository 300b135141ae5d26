"""Every service's edge: security headers on every answer, form posts from other sites refused, failed
administrator authentications throttled, weak administrator tokens refused in production."""

import ipaddress

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from shared.edge import AdminThrottle, Edge
from shared.settings import ServiceSettings


async def form(_: Request) -> PlainTextResponse:
    return PlainTextResponse("accepted")


async def admin_only(request: Request) -> JSONResponse:
    if request.headers.get("authorization") != "Bearer right":
        return JSONResponse({"title": "Unauthorized"}, status_code=401)
    return JSONResponse({"ok": True})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(settings: ServiceSettings, clock: Clock | None = None) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/form", form, methods=["POST", "GET"]), Route("/admin", admin_only)])
    edge = Edge(app, settings, AdminThrottle(3, clock or Clock()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://workspace.example")


async def test_every_answer_carries_the_security_headers() -> None:
    async with client(ServiceSettings()) as http:
        answer = await http.get("/form")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "base-uri 'none'" in answer.headers["content-security-policy"]
    assert "strict-transport-security" not in answer.headers
    embedded = ServiceSettings(
        environment="production", admin_token=SecretStr("x" * 32), frame_ancestors="https://www.culture.gouv.fr"
    )
    async with client(embedded) as http:
        answer = await http.get("/form")
    assert "frame-ancestors https://www.culture.gouv.fr" in answer.headers["content-security-policy"]
    assert "x-frame-options" not in answer.headers
    assert answer.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "https://attacker.example"}, 403),
        ({"origin": "null"}, 403),
        ({"sec-fetch-site": "cross-site", "origin": "http://workspace.example"}, 403),
        ({"sec-fetch-site": "same-site"}, 403),
        ({"origin": "http://workspace.example"}, 200),
        ({"sec-fetch-site": "same-origin"}, 200),
        ({}, 200),  # not a browser: the forms' own tokens still apply
    ],
)
async def test_form_posts_from_another_site_are_refused(headers: dict[str, str], status: int) -> None:
    async with client(ServiceSettings()) as http:
        answer = await http.post("/form", data={"a": "b"}, headers=headers)
    assert answer.status_code == status
    assert answer.headers["x-content-type-options"] == "nosniff"


async def test_json_posts_are_not_forms() -> None:
    async with client(ServiceSettings()) as http:
        answer = await http.post("/form", json={"a": "b"}, headers={"origin": "https://attacker.example"})
    assert answer.status_code == 200


async def test_failed_administrator_authentications_are_throttled_per_client() -> None:
    clock = Clock()
    async with client(ServiceSettings(), clock) as http:
        for _ in range(3):
            assert (await http.get("/admin", headers={"authorization": "Bearer wrong"})).status_code == 401
        throttled = await http.get("/admin", headers={"authorization": "Bearer right"})
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "60"
        assert (await http.get("/form")).status_code == 200  # requests without a token go on
        clock.now += 61
        assert (await http.get("/admin", headers={"authorization": "Bearer right"})).status_code == 200


def test_production_wants_a_long_administrator_token() -> None:
    with pytest.raises(ValidationError, match="32 characters"):
        ServiceSettings(environment="production", admin_token=SecretStr("short-but-not-default"))
    assert ServiceSettings(environment="production", admin_token=SecretStr("y" * 32)).environment == "production"


async def test_behind_a_trusted_proxy_the_throttle_keys_on_the_client_it_forwards() -> None:
    # The test transport connects from 127.0.0.1: it plays the ingress.
    settings = ServiceSettings(trusted_proxies=[ipaddress.ip_network("127.0.0.0/8")])
    async with client(settings) as http:
        for n in range(3):
            forwarded = {"authorization": "Bearer wrong", "x-forwarded-for": f"{n}.{n}.{n}.{n}, 203.0.113.9"}
            assert (await http.get("/admin", headers=forwarded)).status_code == 401
        same = {"authorization": "Bearer right", "x-forwarded-for": "9.9.9.9, 203.0.113.9"}
        assert (await http.get("/admin", headers=same)).status_code == 429
        other = {"authorization": "Bearer right", "x-forwarded-for": "198.51.100.7"}
        assert (await http.get("/admin", headers=other)).status_code == 200

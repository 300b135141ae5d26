"""The HTTP plumbing every service shares: what a 405 says the path allows, and what the OpenAPI
document adds to what FastAPI generates."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import FastAPI, Header
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from shared.http import PROBLEM_JSON, service_app


@asynccontextmanager
async def no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


class Body(BaseModel):
    title: str


def app_with_routes() -> FastAPI:
    """Two routes on one template, declared apart (as the services do), and a fixed path next to a
    parameter in the same place."""
    app = service_app("catalogue", no_lifespan, {}, CollectorRegistry())

    async def read(item_id: str) -> dict[str, str]:
        return {"read": item_id}

    async def write(item_id: str, body: Body, authorization: Annotated[str | None, Header()] = None) -> Body:
        return body

    async def release(item_id: str) -> None:
        return None

    app.add_api_route("/v1/items/{item_id}", write, methods=["PUT"])
    app.add_api_route("/v1/items/{item_id}", read, methods=["GET"])
    app.add_api_route("/v1/items/{item_id}/{name}", read, methods=["GET"])
    app.add_api_route("/v1/items/{item_id}/release", release, methods=["POST"], status_code=204)
    return app


async def answers(app: FastAPI, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        return await client.request(method, path)


async def test_a_405_allows_every_method_of_the_path_not_only_the_first_route_s() -> None:
    app = app_with_routes()
    for method in ("OPTIONS", "DELETE", "POST"):
        answer = await answers(app, method, "/v1/items/i1")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET, PUT"
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["status"] == 405


async def test_a_fixed_path_allows_its_own_methods_not_those_of_a_template_it_also_matches() -> None:
    app = app_with_routes()
    answer = await answers(app, "OPTIONS", "/v1/items/i1/release")
    assert (answer.status_code, answer.headers["allow"]) == (405, "POST")
    answer = await answers(app, "PUT", "/v1/items/i1/data.csv")
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET")


def test_the_document_states_the_400_of_a_body_that_is_not_json_and_the_429_of_the_throttle() -> None:
    paths = app_with_routes().openapi()["paths"]
    put = paths["/v1/items/{item_id}"]["put"]["responses"]
    get = paths["/v1/items/{item_id}"]["get"]["responses"]
    assert {"400", "422", "429"} <= set(put)
    assert all(PROBLEM_JSON in put[status]["content"] for status in ("400", "422", "429"))
    assert not {"400", "429"} & set(get)  # no body, no token

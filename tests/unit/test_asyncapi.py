"""The AsyncAPI document: every topic a channel, the committed `docs/asyncapi.yaml` what the code generates,
and every document valid against the AsyncAPI 3.0 JSON Schema of npm `@asyncapi/specs`."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from jsonschema import Draft7Validator
from prometheus_client import CollectorRegistry

from shared.asyncapi import FLOWS, SERVICES, document, render_html, to_yaml
from shared.http import service_app
from shared.topics import TOPICS

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"
ASYNCAPI_3_SCHEMA = ROOT / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"
REGENERATE = "uv run python -m shared.asyncapi > docs/asyncapi.yaml"


def validator() -> Draft7Validator:
    assert ASYNCAPI_3_SCHEMA.exists(), f"{ASYNCAPI_3_SCHEMA} is missing: run `npm ci` (make test does)"
    return Draft7Validator(json.loads(ASYNCAPI_3_SCHEMA.read_text()))


def as_json(doc: dict[str, Any]) -> Any:
    return json.loads(json.dumps(doc))


def test_the_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.read_text() == to_yaml(document()), f"docs/asyncapi.yaml is stale: {REGENERATE}"
    assert yaml.safe_load(COMMITTED.read_text()) == as_json(document())


@pytest.mark.parametrize("service", [None, *SERVICES])
def test_every_document_is_valid_asyncapi_3(service: str | None) -> None:
    errors = [
        f"{error.json_path}: {error.message[:200]}" for error in validator().iter_errors(as_json(document(service)))
    ]
    assert errors == []


def test_the_schema_catches_a_bad_document() -> None:
    doc = as_json(document())
    next(iter(doc["operations"].values()))["action"] = "publish"
    assert list(validator().iter_errors(doc))


@pytest.mark.parametrize("service", [None, *SERVICES])
def test_every_document_lists_every_topic(service: str | None) -> None:
    channels = document(service)["channels"]
    assert sorted(channel["address"] for channel in channels.values()) == sorted(spec.name for spec in TOPICS)


def test_each_topic_carries_one_contract_and_is_sent_by_someone() -> None:
    assert len({flow.topic for flow in FLOWS}) == len(FLOWS)
    for flow in FLOWS:
        assert flow.message.__module__.startswith("shared.contracts."), flow.topic
        assert any(operation.action == "send" for operation in flow.operations), flow.topic
        assert {operation.service for operation in flow.operations} <= set(SERVICES), flow.topic


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_document_holds_its_own_operations_only(service: str) -> None:
    operations = document(service)["operations"]
    assert operations
    assert {operation["x-service"] for operation in operations.values()} == {service}


def test_every_message_schema_is_in_the_components() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    for message in doc["components"]["messages"].values():
        assert message["payload"]["$ref"].removeprefix("#/components/schemas/") in schemas
    refs = {ref.removeprefix("#/components/schemas/") for ref in _refs(schemas) if ref.startswith("#/components/")}
    assert refs <= set(schemas)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_the_page_shows_every_channel_and_schema_without_script() -> None:
    doc = document("scoring")
    page = render_html(doc)
    assert "<script" not in page
    for channel in doc["channels"].values():
        assert f"<code>{channel['address']}</code>" in page
    for name in doc["components"]["schemas"]:
        assert f'id="schema-{name}"' in page


@asynccontextmanager
async def no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


async def test_every_service_app_serves_its_document_and_page() -> None:
    app = service_app("catalogue", no_lifespan, {}, CollectorRegistry())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        served = await client.get("/asyncapi.json")
        page = await client.get("/asyncapi")
    assert served.status_code == 200
    assert served.json() == as_json(document("catalogue"))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/asyncapi" not in str(app.openapi()["paths"])

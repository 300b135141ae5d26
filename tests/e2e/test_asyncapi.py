"""Every running service serves the AsyncAPI document: a channel for every topic of `shared/topics.py`,
its own operations, and the same page without script."""

import httpx
import pytest

from shared.asyncapi import SERVICES
from shared.topics import TOPICS
from tests.e2e.conftest import Pipeline


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_serves_every_topic(pipeline: Pipeline, service: str) -> None:
    async with httpx.AsyncClient(base_url=pipeline.url(service), timeout=10) as client:
        served = await client.get("/asyncapi.json")
        page = await client.get("/asyncapi", headers={"Accept": "text/html"})
    assert served.status_code == 200, served.text
    document = served.json()
    assert document["asyncapi"] == "3.0.0"
    assert sorted(channel["address"] for channel in document["channels"].values()) == sorted(t.name for t in TOPICS)
    assert {operation["x-service"] for operation in document["operations"].values()} == {service}
    assert page.status_code == 200
    assert "<script" not in page.text
    for topic in TOPICS:
        assert f"<code>{topic.name}</code>" in page.text

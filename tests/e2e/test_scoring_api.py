"""Scoring's read API: conditional requests and the live feed."""

import asyncio
import json
from typing import Any

import httpx

from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import body_for, poll


async def test_an_unchanged_ranking_answers_304_and_a_changed_one_a_new_etag(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[10]["dataset_id"]
    url = f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings"
    async with httpx.AsyncClient(timeout=10) as client:
        first = await client.get(url)
        etag = first.headers["ETag"]
        assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
        answer = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body_for(dataset))
        assert answer.status_code == 202

        async def changed() -> bool:
            return (await client.get(url, headers={"If-None-Match": etag})).status_code == 200

        await poll("the ranking to change", changed, deadline_s=10)
        fresh = await client.get(url)
    assert fresh.headers["ETag"] != etag
    assert fresh.json()["items"][0]["key"] == dataset


async def test_the_live_feed_sends_the_ranking_then_each_change(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    first, second = (d["dataset_id"] for d in pipeline.datasets("not_open")[10:12])
    url = f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings/stream"
    pages: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_page() -> dict[str, Any]:
            async with asyncio.timeout(10):
                async for line in lines:
                    if line.startswith("data: "):
                        return dict(json.loads(line.removeprefix("data: ")))
            raise AssertionError("the stream ended")

        pages.append(await next_page())
        for dataset in (first, second):
            answer = await client.post(
                f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body_for(dataset, "essential")
            )
            assert answer.status_code == 202
            pages.append(await next_page())
    assert [p["respondents"] for p in pages] == [0, 1, 2]
    assert {i["key"] for i in pages[-1]["items"]} == {first, second}

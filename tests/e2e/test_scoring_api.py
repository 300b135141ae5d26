"""Scoring's read API: conditional requests and the live feed."""

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx

from shared.contracts import utc_now
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import body_for, poll


async def test_an_unchanged_ranking_answers_304_and_a_changed_one_a_new_etag(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[10]["dataset_id"]
    url = f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings"
    async with httpx.AsyncClient(timeout=10, headers=pipeline.admin()) as client:
        first = await client.get(url)
        etag = first.headers["ETag"]
        assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
        answer = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/responses", json=body_for(dataset))
        assert answer.status_code == 202

        async def changed() -> bool:
            return (await client.get(url, headers={"If-None-Match": etag})).status_code == 200

        await poll("the ranking to change", changed, deadline_s=10)
        fresh = await client.get(url)

        # The intervals follow in the background (COD_LIVE_INTERVALS_EVERY_S): the ranking never waits for them.
        async def with_intervals() -> httpx.Response | None:
            answer = await client.get(url)
            return answer if answer.json()["items"][0]["rank_interval"] is not None else None

        fresh = await poll("the row's rank interval", with_intervals, deadline_s=15, interval_s=0.25)
    assert fresh.headers["ETag"] != etag
    assert fresh.json()["items"][0]["key"] == dataset
    # one respondent, one row: sure of its rank; the bootstrap is stated in the method
    assert fresh.json()["items"][0]["rank_interval"] == [1, 1]
    assert fresh.json()["items"][0]["too_close_to_call"] is False
    assert fresh.json()["method"]["uncertainty"]["resamples"] == 200


async def test_the_live_feed_sends_the_ranking_then_each_change(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    first, second = (d["dataset_id"] for d in pipeline.datasets("not_open")[10:12])
    url = f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings/stream"
    pages: list[dict[str, Any]] = []
    staff = pipeline.admin()
    async with httpx.AsyncClient(timeout=10) as client, client.stream("GET", url, headers=staff) as stream:
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


async def test_live_rankings_are_for_staff_unless_public_while_open(pipeline: Pipeline) -> None:
    staff = pipeline.admin()
    private = pipeline.open_consultation(seconds=600)
    now = utc_now()
    public = f"c-public-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as client:
        defined = await client.put(
            f"{pipeline.url('ingest')}/v1/consultations/{public}",
            json={
                "title": "Public",
                "opens_at": (now - timedelta(seconds=1)).isoformat(),
                "closes_at": (now + timedelta(seconds=600)).isoformat(),
                "public_rankings": True,
            },
            headers=staff,
        )
        assert defined.status_code == 200, defined.text

        def url(cid: str, stream: bool = False) -> str:
            return f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings" + ("/stream" if stream else "")

        async def status(cid: str, headers: dict[str, str] | None = None, stream: bool = False) -> int:
            async with client.stream("GET", url(cid, stream), headers=headers) as answer:
                return answer.status_code

        async def public_seen() -> bool:
            return await status(public) == 200

        await poll("scoring to know the public consultation", public_seen, deadline_s=10)
        assert await status(private) == 401
        assert await status(private, stream=True) == 401
        assert await status(private, {"Authorization": "Bearer wrong"}) == 401
        assert await status(private, staff) == 200
        assert await status(public, stream=True) == 200
        closed = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{public}/close", headers=staff)
        assert closed.status_code == 200

        async def embargoed() -> bool:
            return await status(public) == 401

        await poll("the public rankings closed with the consultation", embargoed, deadline_s=10)
        assert await status(public, staff) == 200

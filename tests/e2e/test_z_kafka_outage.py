"""Kafka stopped under a running system: ingest refuses with 503, nothing is half-accepted, all recovers.

Named to run last: it stops and restarts the broker every other test uses."""

import asyncio
import uuid

import httpx

from deploy.local import infra as local_infra
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import as_tuples, assert_problem, body_for, poll, post, rankings


async def test_while_kafka_is_down_ingest_answers_503_and_records_nothing(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    probe, refused_dataset = (d["dataset_id"] for d in pipeline.datasets("not_open")[8:10])
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        await asyncio.to_thread(local_infra.kafka_down, pipeline.infra)
        try:
            refused = await post(client, cid, body_for(refused_dataset, "essential", response_id=uuid.uuid4().hex))

            async def not_ready() -> bool:
                return (await client.get("/readyz")).status_code == 503

            await poll("ingest to report itself not ready", not_ready, deadline_s=15)
        finally:
            await asyncio.to_thread(local_infra.kafka_up, pipeline.infra)
        problem = assert_problem(refused, 503)
        assert refused.headers["Retry-After"] == "5"
        assert "rien n'a été conservé" in problem["detail"]

        for service in pipeline.services.values():
            await asyncio.to_thread(service.wait_ready)
        answer = await post(client, cid, body_for(probe, "useful"))
        assert answer.status_code == 202

        async def probe_counted() -> bool:
            return probe in {key for key, _, _ in as_tuples(await rankings(client, pipeline, cid, "open"))}

        await poll("the pipeline to work again", probe_counted, deadline_s=60, interval_s=0.25)
        assert as_tuples(await rankings(client, pipeline, cid, "open")) == [(probe, 1, 1)]

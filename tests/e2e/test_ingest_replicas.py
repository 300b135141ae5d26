"""Ingest with several replicas: an early close holds on every replica, and a replica killed mid-transaction
is fenced by its replacement at once. Real processes on the real Kafka."""

import asyncio
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from deploy.local.infra import REPO_ROOT
from deploy.local.processes import ServiceProcess, service_env
from shared.topics import RESPONSES_SUBMITTED
from tests.e2e.conftest import PORTS, SETTINGS, Pipeline
from tests.e2e.helpers import body_for, poll, post, published_results, rankings, topic_messages

Answer = tuple[str, int, dict[str, Any]]


def replica(pipeline: Pipeline, port: int, name: str, settings: dict[str, str]) -> ServiceProcess:
    """Another ingest process on `port`, with the pipeline's settings under `settings`."""
    env = service_env(pipeline.infra, port, SETTINGS | {"COD_INSTANCE": name} | settings)
    log: Path = pipeline.infra.root / "logs" / f"{name}.log"
    return ServiceProcess("ingest", port, env, log)


async def load(
    client: httpx.AsyncClient, name: str, cid: str, body: dict[str, Any], answers: list[Answer], stop: asyncio.Event
) -> None:
    """Submit responses one after another, each its own respondent, until `stop` (the one in flight answered)."""
    while not stop.is_set():
        answer = await post(client, cid, body)
        answers.append((name, answer.status_code, answer.json()))


async def test_no_replica_accepts_a_response_received_after_an_early_close(pipeline: Pipeline) -> None:
    second = replica(pipeline, PORTS["ingest"] + 10, "ingest-b", {"COD_INGEST_SLOT": "1"})
    second.start()
    try:
        await asyncio.to_thread(second.wait_ready)
        cid = pipeline.open_consultation(seconds=600)
        body = body_for(pipeline.datasets("not_open")[5]["dataset_id"], "essential")
        answers: list[Answer] = []
        stop = asyncio.Event()
        async with (
            httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as first_client,
            httpx.AsyncClient(base_url=second.url, timeout=30) as second_client,
        ):
            clients = {"a": first_client, "b": second_client}
            workers = [
                asyncio.create_task(load(client, name, cid, body, answers, stop))
                for name, client in clients.items()
                for _ in range(3)
            ]

            def both(status: int, at_least: int) -> Any:
                async def check() -> bool:
                    return all(sum(a[:2] == (n, status) for a in answers) >= at_least for n in clients)

                return check

            try:
                await poll("both replicas accepting", both(202, 20), deadline_s=60)
                closed = await first_client.post(f"/v1/consultations/{cid}/close", headers=pipeline.admin())
                assert closed.status_code == 200, closed.text
                await poll("both replicas refusing", both(409, 5), deadline_s=60)
            finally:
                stop.set()
                await asyncio.gather(*workers)
            closes_at = datetime.fromisoformat(closed.json()["closes_at"])
            assert {status for _, status, _ in answers} == {202, 409}, [a for a in answers if a[1] not in (202, 409)]
            assert all(body["window"] == "closed" for _, status, body in answers if status == 409)
            accepted = [body for _, status, body in answers if status == 202]
            late = [b for b in accepted if datetime.fromisoformat(b["received_at"]) >= closes_at]
            assert late == [], f"{len(late)} responses received at or after {closes_at} were answered 202"
            results = await published_results(first_client, pipeline, cid, deadline_s=120)
            assert results["respondents"] == len(accepted)
            counted = await rankings(first_client, pipeline, cid, "open")
            assert counted["respondents"] == len(accepted)
    finally:
        assert second.stop() == 0


# A stand-in for an ingest replica killed mid-transaction: it holds lane 0's transactional id of slot 7, as
# ingest builds it, with a transaction open on every partition of `response.submitted.v1`, until SIGKILL.
# (A real ingest killed under load rarely leaves one open: its transactions last a few milliseconds.)
DEAD_REPLICA = """
import asyncio, socket, sys
from aiokafka import AIOKafkaProducer
from services.ingest.settings import IngestSettings
from shared.topics import RESPONSES_SUBMITTED

async def main(bootstrap: str) -> None:
    transactional_id = IngestSettings(ingest_slot=7).transactional_id(socket.gethostname()) + "-0"
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=transactional_id, transaction_timeout_ms=60_000
    )
    await producer.start()
    await producer.begin_transaction()
    for partition in sorted(await producer.partitions_for(RESPONSES_SUBMITTED)):
        await (await producer.send(RESPONSES_SUBMITTED, b"{}", partition=partition))
    print("open", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(sys.argv[1]))
"""


async def committed_ids(pipeline: Pipeline) -> set[str]:
    """The response ids a read-committed consumer sees in `response.submitted.v1` now."""
    found = await topic_messages(pipeline.infra.kafka_bootstrap, RESPONSES_SUBMITTED, lambda r: bool(r.value != b"{}"))
    return {m["response_id"] for m in found if isinstance(m, dict) and "response_id" in m}


def dead_replica(pipeline: Pipeline) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", DEAD_REPLICA, pipeline.infra.kafka_bootstrap]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, env=service_env(pipeline.infra, 0))


async def test_a_replacement_in_the_same_slot_fences_a_killed_replica_at_once(pipeline: Pipeline) -> None:
    dead = dead_replica(pipeline)
    replacement = replica(pipeline, PORTS["ingest"] + 11, "ingest-7-after", {"COD_INGEST_SLOT": "7"})
    try:
        assert dead.stdout is not None
        assert await asyncio.to_thread(dead.stdout.readline) == b"open\n"
        dead.kill()  # SIGKILL: its transaction stays open on the broker
        dead.wait()
        cid = pipeline.open_consultation(seconds=600)
        dataset = pipeline.datasets("not_open")[6]["dataset_id"]
        async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
            # Enough respondents, through the other replica, to land on every partition.
            probes = [await post(client, cid, body_for(dataset)) for _ in range(30)]
        assert [p.status_code for p in probes] == [202] * len(probes)
        ids = {p.json()["response_id"] for p in probes}
        assert not ids & await committed_ids(pipeline), "the dead transaction holds the consumers back"
        replacement.start()
        await asyncio.to_thread(replacement.wait_ready)
        opened_at = time.monotonic()

        async def visible() -> bool:
            return ids <= await committed_ids(pipeline)

        # Starting, the replacement fenced the dead producer and had its transaction aborted; the broker
        # alone would abort it only 60 s after it began.
        await poll("the probes visible to read-committed consumers", visible, deadline_s=5, interval_s=0.25)
        assert time.monotonic() - opened_at < 5
    finally:
        dead.kill()
        dead.wait()
        if dead.stdout is not None:
            dead.stdout.close()
        assert replacement.stop() in (0, None)  # None: never started

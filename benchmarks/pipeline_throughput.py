"""End-to-end benchmark: responses per second from POST to scored, next to raw Kafka, and freshness.

    uv run python -m benchmarks.pipeline_throughput [--seconds 15]

In one run, on its own Kafka and SecantusDB (profile `bench`):
(a) baseline: the same number of messages of the same size produced (acks=all) and consumed by a
    consumer group with raw aiokafka, no processing;
(b) the pipeline: responses posted to ingest by `wrk` for `--seconds`, timed until scoring has
    counted every accepted one (read from `GET …/rankings`);
(c) freshness: at half the rate (b) reached, each response's time from its `202` to being counted
    in `GET …/rankings`, p50 and p99.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.ingest_throughput import PORT_SHIFT, bench_infra, body, drive, wrk_script
from deploy.local import infra as local_infra
from deploy.local.processes import make_services
from shared.kafka import ensure_topics
from shared.topics import TopicSpec

ADMIN = "bench-admin-token"
PORTS = {"ingest": 18200, "catalogue": 18201, "scoring": 18202, "publisher": 18203}
PORTS = {name: port + PORT_SHIFT for name, port in PORTS.items()}
# The services log at WARNING while measured; `COD_BENCH_LOG_LEVEL=INFO` shows, e.g., the close's phases.
LOG_LEVEL = os.environ.get("COD_BENCH_LOG_LEVEL", "WARNING")


async def kafka_baseline(bootstrap: str, count: int, size: int) -> float:
    """Messages per second through raw Kafka: produced with acks=all, then consumed by a group."""
    topic = f"bench-baseline-{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, partitions=6)])  # as response.submitted.v1
    payload = b"x" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    started = time.perf_counter()
    try:
        batch = [await producer.send(topic, payload, key=str(i).encode()) for i in range(count)]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            records = await consumer.getmany(timeout_ms=1000, max_records=2000)
            seen += sum(len(r) for r in records.values())
            await consumer.commit()
    finally:
        await consumer.stop()
    return count / (time.perf_counter() - started)


def define(ingest: str, cid: str) -> None:
    now = datetime.now(UTC)
    httpx.put(
        f"{ingest}/v1/consultations/{cid}",
        json={"title": cid, "opens_at": now.isoformat(), "closes_at": (now + timedelta(days=1)).isoformat()},
        headers={"Authorization": f"Bearer {ADMIN}"},
    ).raise_for_status()


async def counted(client: httpx.AsyncClient, scoring: str, cid: str) -> int:
    page = (
        await client.get(
            f"{scoring}/v1/consultations/{cid}/rankings",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    ).json()
    return int(page["respondents"])


async def freshness(
    ingest: str, scoring: str, cid: str, bodies: list[dict[str, Any]], rate: float, seconds: float
) -> list[float]:
    """Open-loop load at `rate`: the time from each 202 to the response counted in the rankings."""
    accepted_at: list[float] = []
    visible_at: dict[int, float] = {}
    done = asyncio.Event()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:

        async def send(n: int) -> None:
            body = bodies[n % len(bodies)] | {"response_id": uuid.uuid4().hex}
            answer = await client.post(f"{ingest}/v1/consultations/{cid}/responses", json=body)
            if answer.status_code == 202:
                accepted_at.append(time.perf_counter())

        async def watch() -> None:
            async with httpx.AsyncClient(timeout=30) as reader:
                while not (done.is_set() and len(visible_at) >= len(accepted_at)):
                    now_counted = await counted(reader, scoring, cid)
                    now = time.perf_counter()
                    for k in range(len(visible_at) + 1, now_counted + 1):
                        visible_at[k] = now
                    await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        start, tasks, n = time.perf_counter(), [], 0
        while time.perf_counter() - start < seconds:
            tasks.append(asyncio.create_task(send(n)))
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
        done.set()
        await asyncio.wait_for(watcher, 120)
    accepted_at.sort()
    return [visible_at[k + 1] - t for k, t in enumerate(accepted_at)]


@contextlib.contextmanager
def bench_stack() -> Iterator[tuple[local_infra.Infra, dict[str, str], list[dict[str, Any]]]]:
    """Fresh Kafka and SecantusDB (profile `bench`) and the four services; yields the infrastructure,
    the services' URLs and 1,000 varied response bodies over the real catalogue. Stops it all after."""
    infra = bench_infra()
    local_infra.up(infra, fresh=True)
    settings = {"COD_ADMIN_TOKEN": ADMIN, "COD_RATE_LIMIT_BURST": "100000000", "COD_LOG_LEVEL": LOG_LEVEL}
    services = make_services(infra, ports=PORTS, overrides=settings)
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        catalogue = services["catalogue"].url
        to_open = [d["dataset_id"] for d in httpx.get(f"{catalogue}/v1/datasets?status=not_open").json()["items"]]
        to_improve = [d["dataset_id"] for d in httpx.get(f"{catalogue}/v1/datasets?status=open").json()["items"]]
        rng = random.Random(1)
        bodies = [body(rng, to_open, to_improve) for _ in range(1000)]
        yield infra, {name: service.url for name, service in services.items()}, bodies
    finally:
        for service in services.values():
            service.stop()
        local_infra.down(infra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with bench_stack() as (infra, urls, bodies):
        ingest, scoring = urls["ingest"], urls["scoring"]
        size = len(json.dumps(bodies[0])) + 300  # about a ResponseSubmitted on the wire

        define(ingest, "warmup")
        script = infra.root / "post.lua"
        script.write_text(wrk_script("/v1/consultations/warmup/responses", bodies))
        drive(ingest, script, 3, args.concurrency)

        cid = "throughput"
        define(ingest, cid)
        script.write_text(wrk_script(f"/v1/consultations/{cid}/responses", bodies))
        started = time.perf_counter()
        posted = drive(ingest, script, args.seconds, args.concurrency)

        async def all_counted() -> float:
            async with httpx.AsyncClient(timeout=30) as client:
                deadline = time.perf_counter() + 300
                while True:
                    if await counted(client, scoring, cid) >= posted["accepted"] or time.perf_counter() > deadline:
                        return time.perf_counter() - started
                    await asyncio.sleep(0.05)

        elapsed = asyncio.run(all_counted())
        end_to_end = posted["accepted"] / elapsed
        baseline = asyncio.run(kafka_baseline(infra.kafka_bootstrap, int(posted["accepted"]), size))

        define(ingest, "freshness")
        delays = asyncio.run(freshness(ingest, scoring, "freshness", bodies, end_to_end / 2, args.seconds))
    delays.sort()
    print(f"run {uuid.uuid4().hex[:8]}: 2 cores; Kafka, SecantusDB, the four services and the load on one machine")
    print(f"  raw Kafka (acks=all, produce then consume {posted['accepted']:.0f} msgs): {baseline:8.0f} msgs/s")
    print(
        f"  pipeline, POST to counted ({posted['accepted']:.0f} responses in {elapsed:.1f} s): "
        f"{end_to_end:8.0f} responses/s   (ingest alone accepted {posted['per_second']:.0f}/s)"
    )
    print(f"  ratio pipeline / raw Kafka: {end_to_end / baseline:.3f}")
    print(
        f"  freshness at {end_to_end / 2:.0f} responses/s ({len(delays)} responses): "
        f"p50 {1000 * statistics.median(delays):.0f} ms, p99 {1000 * delays[int(0.99 * (len(delays) - 1))]:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

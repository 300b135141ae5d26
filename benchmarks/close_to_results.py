"""Closing benchmark: the time from `closes_at` to the results emitted, for a large consultation.

    uv run python -m benchmarks.close_to_results [--responses 200000] [--concurrency 32] [--direct]
        [--baseline]

On its own Kafka and SecantusDB (profile `bench`): `--responses` responses are posted to ingest
with `wrk` (each its own respondent) until scoring has counted them all. With `--direct`, the log is
built directly instead: the responses are produced into `response.submitted.v1` as ingest would write
them (keyed by respondent, stamped now), and the catalogue, scoring and the publisher read them as
usual; only the HTTP hop is skipped, so that millions of responses take minutes, not hours. An
administrator then closes the consultation, and the script measures, from the `closes_at` ingest set:
(a) results emitted: the results message committed in Kafka;
(b) results and files stored and served by the publisher;
(c) the audit command recomputing the rankings from the published files.
With `--baseline`, next to them, measured in the same run: reading every ballot of the consultation
straight from SecantusDB with PyMongo (what the publisher read back at the close before it followed
the log).
"""

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from benchmarks.ingest_throughput import drive, wrk_script
from benchmarks.pipeline_throughput import ADMIN, bench_stack, counted, define
from shared.contracts import ResponseSubmitted, utc_now
from shared.settings import ServiceSettings
from shared.topics import RESPONSES_SUBMITTED, RESULTS_PUBLISHED

CID = "large"


async def results_emitted_at(bootstrap: str, deadline_s: float) -> float:
    """The wall-clock time (epoch seconds) the results message of the consultation is readable."""
    consumer = AIOKafkaConsumer(
        RESULTS_PUBLISHED,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                if any(r.key == CID.encode() for r in records):
                    return time.time()
        raise TimeoutError("no results message")
    finally:
        await consumer.stop()


async def read_ballots(mongo_uri: str) -> tuple[int, float]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_uri)
    started = time.perf_counter()
    n = 0
    async for _ in client["cod_scoring"]["ballots"].find({"consultation_id": CID}, batch_size=2000):
        n += 1
    elapsed = time.perf_counter() - started
    await client.close()
    return n, elapsed


async def produce_log(bootstrap: str, bodies: list[dict[str, Any]], count: int) -> None:
    """`count` responses, each its own respondent, written into `response.submitted.v1` as ingest writes
    them (keyed `<consultation>:<respondent>`, acks=all), in the order of the bodies."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for start in range(0, count, 10_000):
            sent = []
            for n in range(start, min(count, start + 10_000)):
                body = bodies[n % len(bodies)]
                now = utc_now()
                event = ResponseSubmitted.model_validate(
                    {
                        "event_id": f"bench-{n}",
                        "occurred_at": now,
                        "consultation_id": CID,
                        "response_id": f"bench-{n:08d}",
                        "respondent_key": f"respondent-{n:08d}",
                        "profile": body["respondent"]["profile"],
                        "received_at": now,
                        "open_requests": body["open_requests"],
                        "improvement_requests": body["improvement_requests"],
                    }
                )
                key = f"{CID}:{event.respondent_key}".encode()
                sent.append(await producer.send(RESPONSES_SUBMITTED, event.model_dump_json().encode(), key=key))
            await asyncio.gather(*sent)
            done = min(count, start + 10_000)
            if done % 100_000 == 0 or done == count:
                print(f"  produced {done} responses ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        await producer.stop()


def post_responses(ingest: str, script: Path, count: int, concurrency: int) -> int:
    """Post until `count` responses are accepted (wrk runs for a time: repeated until enough)."""
    started = time.perf_counter()
    accepted = 0
    while accepted < count:
        seconds = max(5.0, min(120.0, (count - accepted) / 250))
        accepted += int(drive(ingest, script, seconds, concurrency)["accepted"])
        print(f"  posted {accepted} responses ({time.perf_counter() - started:.0f} s)", flush=True)
    return accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--direct", action="store_true", help="build the log directly, not through HTTP")
    parser.add_argument("--baseline", action="store_true", help="also time reading every ballot from the store")
    args = parser.parse_args()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with bench_stack() as (infra, urls, bodies, _):
        ingest, scoring, publisher = urls["ingest"], urls["scoring"], urls["publisher"]
        define(ingest, CID)
        script = infra.root / "post.lua"
        script.write_text(wrk_script(f"/v1/consultations/{CID}/responses", bodies))

        async def count() -> int:
            async with httpx.AsyncClient(timeout=30) as client:
                return await counted(client, scoring, CID)

        load_started = time.perf_counter()
        if args.direct:
            asyncio.run(produce_log(infra.kafka_bootstrap, bodies, args.responses))
            accepted = args.responses
        else:
            accepted = post_responses(ingest, script, args.responses, args.concurrency)
        while (n := asyncio.run(count())) < accepted:
            print(f"  counted {n} / {accepted}", flush=True)
            time.sleep(10)  # progress display only; the measurement below starts at the close
        print(f"  all {accepted} counted after {time.perf_counter() - load_started:.0f} s", flush=True)

        closed = httpx.post(f"{ingest}/v1/consultations/{CID}/close", headers=admin, timeout=30)
        closed.raise_for_status()
        closes_at = datetime.fromisoformat(closed.json()["closes_at"]).timestamp()
        emitted_at = asyncio.run(results_emitted_at(infra.kafka_bootstrap, deadline_s=3600))
        with httpx.Client(timeout=120, headers=admin) as client:
            while client.get(f"{publisher}/v1/consultations/{CID}/results/files").status_code != 200:
                time.sleep(0.2)
            stored_at = time.time()
            files = client.get(f"{publisher}/v1/consultations/{CID}/results/files").json()["files"]
        audit_started = time.perf_counter()
        audit = subprocess.run(
            [
                sys.executable,
                "-m",
                "services.publisher.audit",
                f"{publisher}/v1/consultations/{CID}/results",
                "--token",
                ADMIN,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        audit_seconds = time.perf_counter() - audit_started
        ballots, baseline = asyncio.run(read_ballots(infra.mongo_uri)) if args.baseline else (accepted, 0.0)
    settle = ServiceSettings().kafka_produce_timeout_s + 1  # the publisher's wait before its watermark
    print(f"consultation of {accepted} responses ({ballots} respondents), 2 cores, everything on one machine")
    print(
        f"  closes_at -> results emitted in Kafka:       {emitted_at - closes_at:7.1f} s (of which {settle} s settle)"
    )
    print(f"  closes_at -> results and files served:       {stored_at - closes_at:7.1f} s")
    if args.baseline:
        print(f"  baseline, reading the {ballots} ballots from SecantusDB: {baseline:7.1f} s")
        print(f"  ratio (emitted - settle) / baseline:          {(emitted_at - closes_at - settle) / baseline:7.2f}")
    print(f"  audit (download, recompute, compare):        {audit_seconds:7.1f} s -> {audit.stdout.splitlines()[-1]}")
    print("  files: " + ", ".join(f"{f['name']} {f['bytes'] / 1e6:.1f} MB" for f in files))
    print(
        json.dumps(
            {
                "responses": accepted,
                "direct": args.direct,
                "emitted_s": round(emitted_at - closes_at, 1),
                "files_s": round(stored_at - closes_at, 1),
                "audit_s": round(audit_seconds, 1),
                "audit": audit.stdout.splitlines()[-1] if audit.stdout else audit.stderr[-200:],
            }
        )
    )
    return 0 if audit.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

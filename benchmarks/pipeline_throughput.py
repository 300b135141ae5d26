"""End-to-end benchmark: responses per second from POST to scored, next to raw Kafka, and freshness.

    uv run python -m benchmarks.pipeline_throughput [--seconds 15] [--json]

In one run, on its own Kafka and SecantusDB (profile `bench`), after a warm-up of the broker's JVM
(raw produce and consume) and of the whole pipeline (posted responses waited for until counted):
(a) the bare endpoint of `benchmarks.bare_app` (same server stack, no work) driven by `wrk`;
(b) the pipeline: responses posted to ingest by `wrk` for `--seconds` (ingest's own rate is what it
    accepted meanwhile, the consumers working beside it), timed until scoring has counted every
    accepted one (read from `GET …/rankings`);
(c) baseline: the same number of messages of the same size produced (acks=all) and consumed by a
    consumer group with raw aiokafka, no processing;
(d) freshness: at half the rate (b) reached, each response's time from its `202` to being counted in
    `GET …/rankings`, polled every `--poll-ms` (not more, so as not to load what is measured) and
    attributed by count: the k-th response accepted is taken as visible at the end of the first poll
    that counted k, an upper bound.
With `--json` the last line is one JSON object with every figure.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.ingest_throughput import PORT_SHIFT, bare_endpoint, bench_infra, body, drive, start_bare, wrk_script
from deploy.local import infra as local_infra
from deploy.local.infra import KAFKA_MARKER, MONGO_MARKER
from deploy.local.infra import _read_pid as read_pid
from deploy.local.processes import ServiceProcess, make_services
from shared.kafka import ensure_topics
from shared.topics import RESPONSES_ENRICHED, RESPONSES_SUBMITTED, TopicSpec, topic_specs

ADMIN = "bench-admin-token"
PORTS = {"ingest": 18200, "catalogue": 18201, "scoring": 18202, "publisher": 18203, "bare": 18209}
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
    """Respondents counted in `cid` (every profile: the page's `respondents` is the consultation's)."""
    page = (
        await client.get(
            f"{scoring}/v1/consultations/{cid}/rankings",
            # With a profile the page skips the rank intervals (a background resampling of every ballot,
            # at most every 2 s): polled often, they would load the process being measured.
            params={"limit": 1, "profile": "researcher"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    ).json()
    return int(page["respondents"])


class Poster:
    """A pool of keep-alive HTTP/1.1 connections POSTing JSON: a client cheap enough (no httpx per
    request) that an open-loop load keeps its rate on a busy machine."""

    def __init__(self, base_url: str, connections: int) -> None:
        url = httpx.URL(base_url)
        self._host, self._port = url.host, url.port or 80
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self._connections = connections

    async def __aenter__(self) -> "Poster":
        for _ in range(self._connections):
            self._idle.put_nowait(await asyncio.open_connection(self._host, self._port))
        return self

    async def __aexit__(self, *_: object) -> None:
        while not self._idle.empty():
            self._idle.get_nowait()[1].close()

    async def post(self, path: str, payload: bytes) -> tuple[int, bytes]:
        reader, writer = await self._idle.get()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        status_line, *headers = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        length = next(int(h.split(b":")[1]) for h in headers if h.lower().startswith(b"content-length:"))
        answer = await reader.readexactly(length)
        self._idle.put_nowait((reader, writer))
        return int(status_line.split()[1]), answer


async def freshness(
    ingest: str, scoring: str, cid: str, bodies: list[dict[str, Any]], rate: float, seconds: float, poll_s: float
) -> list[float]:
    """Open-loop load at `rate`: the time from each 202 to the response counted in the rankings."""
    accepted_at: list[float] = []
    visible_at: dict[int, float] = {}
    refused: collections.Counter[str] = collections.Counter()
    path = f"/v1/consultations/{cid}/responses"
    done = asyncio.Event()
    async with Poster(ingest, 128) as poster:

        async def send(n: int) -> None:
            # Each response its own response_id, as every client the project ships sends one.
            payload = json.dumps(bodies[n % len(bodies)] | {"response_id": uuid.uuid4().hex}).encode()
            status, answer = await poster.post(path, payload)
            if status == 202:
                accepted_at.append(time.perf_counter())
            else:
                refused[f"{status} {answer[:200]!r}"] += 1

        async def watch() -> None:
            async with httpx.AsyncClient(timeout=30) as reader:
                while not (done.is_set() and len(visible_at) >= len(accepted_at)):
                    polled = time.perf_counter()
                    now_counted = await counted(reader, scoring, cid)
                    now = time.perf_counter()
                    for k in range(len(visible_at) + 1, now_counted + 1):
                        visible_at[k] = now
                    await asyncio.sleep(max(0.0, polled + poll_s - time.perf_counter()))

        watcher = asyncio.create_task(watch())
        start, tasks, n = time.perf_counter(), [], 0
        while time.perf_counter() - start < seconds:
            tasks.append(asyncio.create_task(send(n)))
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
        done.set()
        await asyncio.wait_for(watcher, 120)
    for answer, times in refused.most_common(3):
        print(f"  freshness: {times} answers {answer}", file=sys.stderr)
    accepted_at.sort()
    return [visible_at[k + 1] - t for k, t in enumerate(accepted_at)]


@contextlib.contextmanager
def bench_stack(
    ingest_replicas: int = 1, overrides: dict[str, str] | None = None, partitions: int | None = None
) -> Iterator[tuple[local_infra.Infra, dict[str, str], list[dict[str, Any]], dict[str, ServiceProcess]]]:
    """Fresh Kafka and SecantusDB (profile `bench`) and the four services (ingest `ingest_replicas` times,
    as `ingest`, `ingest-2`…); yields the infrastructure, the services' URLs, 1,000 varied response bodies
    over the real catalogue and the processes. With `partitions`, the two topics of responses are created
    with that many before the services start (they keep topics that exist). Stops it all after."""
    infra = bench_infra()
    local_infra.up(infra, fresh=True)
    if partitions:
        answers = [s for s in topic_specs() if s.name in (RESPONSES_SUBMITTED, RESPONSES_ENRICHED)]
        asyncio.run(ensure_topics(infra.kafka_bootstrap, [replace(s, partitions=partitions) for s in answers]))
    settings = {"COD_ADMIN_TOKEN": ADMIN, "COD_RATE_LIMIT_BURST": "100000000", "COD_LOG_LEVEL": LOG_LEVEL}
    settings |= overrides or {}
    services = make_services(infra, ports={k: v for k, v in PORTS.items() if k != "bare"}, overrides=settings)
    for n in range(2, ingest_replicas + 1):
        ingest = services["ingest"]
        port = PORTS["ingest"] + 10 + n
        # Its own slot: replicas sharing one would fence each other's transactions.
        env = ingest.env | {"COD_HTTP_PORT": str(port), "COD_INSTANCE": f"ingest-{n}", "COD_INGEST_SLOT": str(n - 1)}
        services[f"ingest-{n}"] = ServiceProcess("ingest", port, env, ingest.log.with_name(f"ingest-{n}.log"))
    bare = bare_endpoint(infra, PORTS["bare"])
    try:
        for service in services.values():
            service.start()
        start_bare(bare)
        for service in [*services.values(), bare]:
            service.wait_ready()
        catalogue = services["catalogue"].url
        to_open = [d["dataset_id"] for d in httpx.get(f"{catalogue}/v1/datasets?status=not_open").json()["items"]]
        to_improve = [d["dataset_id"] for d in httpx.get(f"{catalogue}/v1/datasets?status=open").json()["items"]]
        rng = random.Random(1)
        bodies = [body(rng, to_open, to_improve) for _ in range(1000)]
        processes = services | {"bare": bare}
        yield infra, {name: service.url for name, service in processes.items()}, bodies, processes
    finally:
        bare.stop()
        for service in services.values():
            service.stop()
        local_infra.down(infra)


def process_ids(infra: local_infra.Infra, processes: dict[str, ServiceProcess]) -> dict[str, int]:
    """The pid of each service of the pipeline, of Kafka and of SecantusDB."""
    pids = {
        name: p.proc.pid
        for name, p in processes.items()
        if p.proc and (name.startswith("ingest") or name in ("catalogue", "scoring"))
    }
    for name, pid_file, marker in (("kafka", "kafka.pid", KAFKA_MARKER), ("secantusdb", "mongo.pid", MONGO_MARKER)):
        pid = read_pid(infra.root / pid_file, marker)
        if pid is not None:
            pids[name] = pid
    return pids


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_counted(scoring: str, cid: str, expected: float, started: float) -> float:
    """Seconds from `started` until scoring counts `expected` respondents in `cid` (polled every 50 ms)."""
    async with httpx.AsyncClient(timeout=30) as client:
        deadline = time.perf_counter() + 300
        while await counted(client, scoring, cid) < expected:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{cid}: not every accepted response counted after 300 s")
            await asyncio.sleep(0.05)
        return time.perf_counter() - started


def ingests(urls: dict[str, str]) -> list[str]:
    return [url for name, url in urls.items() if name.startswith("ingest")]


def drive_all(urls: list[str], script: Path, seconds: float, concurrency: int) -> dict[str, float]:
    """`drive` every URL at once (the connections shared out), the figures summed."""
    results: list[dict[str, float]] = []
    threads = [
        threading.Thread(target=lambda url=url: results.append(drive(url, script, seconds, concurrency // len(urls))))
        for url in urls
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {key: sum(r[key] for r in results) for key in ("per_second", "accepted", "errors")}


def warm_up(infra: local_infra.Infra, urls: dict[str, str], bodies: list[dict[str, Any]], args: Any) -> None:
    """The broker's JVM and every service warmed: raw produce and consume, then the pipeline until counted."""
    size = len(json.dumps(bodies[0])) + 300
    asyncio.run(kafka_baseline(infra.kafka_bootstrap, 20_000, size))
    define(urls["ingest"], "warmup")
    script = infra.root / "warmup.lua"
    script.write_text(wrk_script("/v1/consultations/warmup/responses", bodies))
    drive(urls["bare"], script, 2, args.concurrency)
    posted = drive_all(ingests(urls), script, args.warmup, args.concurrency)
    asyncio.run(wait_counted(urls["scoring"], "warmup", posted["accepted"], time.perf_counter()))


def measure(args: Any) -> dict[str, float]:
    overrides = {"COD_COMMIT_LANES": str(args.lanes)} if args.lanes else {}
    with bench_stack(args.ingest_replicas, overrides, args.partitions) as (infra, urls, bodies, processes):
        ingest, scoring = urls["ingest"], urls["scoring"]
        size = len(json.dumps(bodies[0])) + 300  # about a ResponseSubmitted on the wire
        warm_up(infra, urls, bodies, args)

        cid = "throughput"
        define(ingest, cid)
        script = infra.root / "post.lua"
        script.write_text(wrk_script(f"/v1/consultations/{cid}/responses", bodies))
        bare = drive(urls["bare"], script, args.seconds, args.concurrency)
        pids = process_ids(infra, processes)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        posted = drive_all(ingests(urls), script, args.seconds, args.concurrency)
        elapsed = asyncio.run(wait_counted(scoring, cid, posted["accepted"], started))
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        end_to_end = posted["accepted"] / elapsed
        raw = asyncio.run(kafka_baseline(infra.kafka_bootstrap, int(posted["accepted"]), size))

        define(ingest, "freshness")
        rate = end_to_end / 2
        delays = asyncio.run(freshness(ingest, scoring, "freshness", bodies, rate, args.seconds, args.poll_ms / 1000))
    delays.sort()
    return {
        "raw_kafka_per_s": raw,
        "bare_http_per_s": bare["per_second"],
        "ingest_per_s": posted["per_second"],
        "pipeline_per_s": end_to_end,
        "pipeline_over_raw": end_to_end / raw,
        "ingest_over_bare": posted["per_second"] / bare["per_second"],
        "freshness_rate_per_s": rate,
        "freshness_p50_ms": 1000 * statistics.median(delays),
        "freshness_p99_ms": 1000 * delays[int(0.99 * (len(delays) - 1))],
        "accepted": posted["accepted"],
        "elapsed_s": elapsed,
        "freshness_responses": len(delays),
    } | {f"cpu_ms_per_response_{name}": 1000 * seconds / posted["accepted"] for name, seconds in cpu.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds of pipeline warm-up load")
    parser.add_argument("--poll-ms", type=float, default=25.0, help="how often freshness reads the rankings")
    parser.add_argument("--lanes", type=int, default=0, help="ingest's COD_COMMIT_LANES (default: its own)")
    parser.add_argument("--ingest-replicas", type=int, default=1, help="ingest processes, the load shared out")
    parser.add_argument(
        "--partitions", type=int, default=0, help="partitions of the two topics of responses (default: 6)"
    )
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON object, last")
    args = parser.parse_args()
    m = measure(args)
    print(f"run {uuid.uuid4().hex[:8]}: 2 cores; Kafka, SecantusDB, the four services and the load on one machine")
    print(f"  bare endpoint (same server stack, no work): {m['bare_http_per_s']:8.0f} responses/s")
    print(
        f"  ingest, while the pipeline consumes:        {m['ingest_per_s']:8.0f} accepted/s"
        f"   (ingest / bare {m['ingest_over_bare']:.3f})"
    )
    print(f"  raw Kafka (acks=all, produce then consume {m['accepted']:.0f} msgs): {m['raw_kafka_per_s']:8.0f} msgs/s")
    print(
        f"  pipeline, POST to counted ({m['accepted']:.0f} responses in {m['elapsed_s']:.1f} s): "
        f"{m['pipeline_per_s']:8.0f} responses/s   (pipeline / raw Kafka {m['pipeline_over_raw']:.3f})"
    )
    print(
        f"  freshness at {m['freshness_rate_per_s']:.0f} responses/s ({m['freshness_responses']:.0f} responses, "
        f"rankings read every {args.poll_ms:.0f} ms): "
        f"p50 {m['freshness_p50_ms']:.0f} ms, p99 {m['freshness_p99_ms']:.0f} ms"
    )
    shares = ", ".join(
        f"{key.removeprefix('cpu_ms_per_response_')} {value:.2f}"
        for key, value in m.items()
        if key.startswith("cpu_ms")
    )
    print(f"  CPU per response counted, ms (POST to counted, by process): {shares}")
    if args.json:
        print(json.dumps({k: round(v, 3) for k, v in m.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

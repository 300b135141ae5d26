"""Ingest benchmark: accepted responses per second and POST latency, next to a bare endpoint.

    uv run python -m benchmarks.ingest_throughput [--seconds 15] [--concurrency 32]

Starts its own Kafka and SecantusDB (profile `bench`, ports 19192 / 17117), the catalogue (ingest
checks responses against its state) and ingest, plus a bare endpoint of the same server stack;
then drives each with the same POSTs for the same time with `wrk` (Debian package; a C client, so
and prints both and their ratio. The machine is shared and noisy: read the ratio.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from deploy.local import infra as local_infra
from deploy.local.infra import REPO_ROOT
from deploy.local.processes import ServiceProcess, make_services, service_env
from shared.contracts import PRIVACY_NOTICE

ADMIN = "bench-admin-token"
# Every port a benchmark uses moves by this much, so two checkouts can run benchmarks side by side.
PORT_SHIFT = int(os.environ.get("COD_BENCH_PORT_SHIFT", "0"))


def bench_infra() -> local_infra.Infra:
    """Kafka and SecantusDB of the benchmarks: profile `bench`, ports 19192/19193/17117 (+ the shift; below the
    ephemeral range, as the tests' are)."""
    return local_infra.Infra(
        profile="bench",
        kafka_port=19192 + PORT_SHIFT,
        kafka_controller_port=19193 + PORT_SHIFT,
        mongo_port=17117 + PORT_SHIFT,
    )


def body(rng: random.Random, to_open: list[str], to_improve: list[str]) -> dict[str, Any]:
    return {
        "respondent": {"profile": rng.choice(["researcher", "company", "journalist", "student"])},
        "open_requests": [{"dataset_id": d, "priority": "important"} for d in rng.sample(to_open, 2)],
        "improvement_requests": [{"dataset_id": rng.choice(to_improve), "kinds": ["api_access"]}],
        "consent": {"accepted": True, "notice": PRIVACY_NOTICE},
    }


def wrk_script(path: str, bodies: list[dict[str, Any]]) -> str:
    """A wrk Lua script POSTing the bodies in turn, each request with a response_id of its own (as every
    client should send: a retry with it after a 503 is counted once)."""
    quoted = ",\n".join("[==[" + json.dumps(b) + "]==]" for b in bodies)
    run = uuid.uuid4().hex[:12]
    return f"""
local bodies = {{{quoted}}}
local n = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
request = function()
  n = n + 1
  local body = bodies[(n % #bodies) + 1]
  local id = '{{"response_id":"{run}-' .. (tid or 0) .. '-' .. n .. '",'
  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json"}}, id .. string.sub(body, 2))
end
"""


def drive(base_url: str, script: Path, seconds: float, concurrency: int) -> dict[str, float]:
    """Load one endpoint with wrk (a C client, so the client is not what is measured)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--latency", "-s", str(script), base_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(failed.group(1)) if failed else 0
    # wrk prints the duration in seconds, or in minutes ("2.00m") past one minute
    amount, unit = re.search(r"requests in ([\d.]+)(ms|s|m|h),", out).groups()  # type: ignore[union-attr]
    elapsed = float(amount) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "per_second": (total - errors) / elapsed,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "accepted": total - errors,
        "errors": errors,
    }


def bare_endpoint(infra: local_infra.Infra, port: int) -> ServiceProcess:
    """The bare endpoint of `benchmarks.bare_app` as a process to start with `start_bare`."""
    return ServiceProcess("bare", port, service_env(infra, port), infra.root / "logs" / "bare.log")


def start_bare(bare: ServiceProcess) -> None:
    bare.proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_app"], cwd=REPO_ROOT, env=bare.env, stdout=subprocess.DEVNULL
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--lanes", type=int, default=2, help="ingest's COD_COMMIT_LANES")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("the benchmark drives the servers with wrk: apt-get install wrk", file=sys.stderr)
        return 1
    infra = bench_infra()
    local_infra.up(infra, fresh=True)
    settings = {
        "COD_ADMIN_TOKEN": ADMIN,
        "COD_RATE_LIMIT_BURST": "100000000",
        "COD_LOG_LEVEL": "WARNING",
        "COD_COMMIT_LANES": str(args.lanes),
    }
    services = make_services(
        infra, ports={"ingest": 18100 + PORT_SHIFT, "catalogue": 18101 + PORT_SHIFT}, overrides=settings
    )
    bare = bare_endpoint(infra, 18109 + PORT_SHIFT)
    try:
        for service in services.values():
            service.start()
        start_bare(bare)
        for service in [*services.values(), bare]:
            service.wait_ready()
        ingest = services["ingest"].url
        now = datetime.now(UTC)
        httpx.put(
            f"{ingest}/v1/consultations/bench",
            json={"title": "bench", "opens_at": now.isoformat(), "closes_at": (now + timedelta(days=1)).isoformat()},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).raise_for_status()
        catalogue = services["catalogue"].url
        to_open = [d["dataset_id"] for d in httpx.get(f"{catalogue}/v1/datasets?status=not_open").json()["items"]]
        to_improve = [d["dataset_id"] for d in httpx.get(f"{catalogue}/v1/datasets?status=open").json()["items"]]
        rng = random.Random(1)
        bodies = [body(rng, to_open, to_improve) for _ in range(1000)]
        script = infra.root / "post.lua"
        script.write_text(wrk_script("/v1/consultations/bench/responses", bodies))
        drive(bare.url, script, 2, args.concurrency)  # warm-up
        drive(ingest, script, 2, args.concurrency)
        baseline = drive(bare.url, script, args.seconds, args.concurrency)
        measured = drive(ingest, script, args.seconds, args.concurrency)
    finally:
        bare.stop()
        for service in services.values():
            service.stop()
        local_infra.down(infra)
    print(f"run {uuid.uuid4().hex[:8]}: {args.seconds:.0f} s each, {args.concurrency} concurrent clients, 2 cores")
    for name, result in (("bare endpoint", baseline), ("ingest (acks=all)", measured)):
        print(
            f"  {name:18} {result['per_second']:8.0f} accepted/s   p50 {result['p50_ms']:6.1f} ms   "
            f"p99 {result['p99_ms']:6.1f} ms   ({result['accepted']:.0f} accepted, {result['errors']:.0f} errors)"
        )
    print(
        f"  ratio ingest / bare: throughput {measured['per_second'] / baseline['per_second']:.2f}, "
        f"p50 latency {measured['p50_ms'] / baseline['p50_ms']:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

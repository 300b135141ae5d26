"""Where the pipeline's time goes: the CPU of each process under load, and py-spy's hottest calls.

    uv run python -m benchmarks.profile_pipeline [--seconds 15] [--top 12] [--concurrency 32]

Starts the stack of `benchmarks.pipeline_throughput`, warms it up, then posts responses with `wrk`
for `--seconds` while `py-spy` (PyPI `py-spy`, in the dev dependencies) samples each Python
process; prints each process's share of the machine's CPU (from /proc, Kafka's JVM and SecantusDB
included) and, per Python process, the functions with the most samples, by own time and by total.
"""

import argparse
import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.ingest_throughput import drive, wrk_script
from benchmarks.pipeline_throughput import bench_stack, cpu_seconds, define, process_ids, warm_up


def hottest(raw: Path, top: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """From py-spy's collapsed stacks: the frames with most samples on top (own) and anywhere (total)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1] if " (" in f else f for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return own.most_common(top), total.most_common(top), samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path(".local/profiles"))
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    with bench_stack() as (infra, urls, bodies, processes):
        warm_up(infra, urls, bodies, args)
        define(urls["ingest"], "profile")
        script = infra.root / "profile.lua"
        script.write_text(wrk_script("/v1/consultations/profile/responses", bodies))
        pids = process_ids(infra, processes)
        python = [name for name in pids if name != "kafka"]
        spies = {
            name: subprocess.Popen(
                [spy, "record", "--pid", str(pids[name]), "--duration", f"{args.seconds:.0f}", "--rate", "200",
                 "--format", "raw", "--output", str(args.out / f"{name}.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for name in python
        }  # fmt: skip
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: result.update(drive(urls["ingest"], script, args.seconds, args.concurrency))
        )
        started = time.perf_counter()
        load.start()
        load.join()
        elapsed = time.perf_counter() - started
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        for process in spies.values():
            process.wait()
    print(f"{result['per_second']:.0f} responses/s accepted by ingest for {elapsed:.0f} s; CPU of each process:")
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"  {name:12} {100 * seconds / elapsed:5.0f} % of a core")
    for name in python:
        own, total, samples = hottest(args.out / f"{name}.txt", args.top)
        print(f"\n{name}: {samples} samples; own time")
        for frame, n in own:
            print(f"  {100 * n / max(samples, 1):5.1f} %  {frame}")
        print(f"{name}: total time (the frame or what it calls)")
        for frame, n in total:
            print(f"  {100 * n / max(samples, 1):5.1f} %  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

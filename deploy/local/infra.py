"""Local infrastructure: Apache Kafka (KRaft, from its Maven Central jars) and SecantusDB.

Installs what is missing, starts both as background processes with their data under
`.local/<profile>/`, waits until each really answers (with a deadline and a clear error), and
stops them. Every step is idempotent and tolerates what an earlier run left behind: a stale pid
file, a process killed with SIGKILL, an already running server of ours.

    python -m deploy.local.infra up [--profile run] [--kafka-port 9092] [--mongo-port 27017]
    python -m deploy.local.infra down [--profile run]
    python -m deploy.local.infra status [--profile run]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_ROOT = REPO_ROOT / ".local"
KAFKA_POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
KAFKA_LOG4J = Path(__file__).resolve().parent / "kafka" / "log4j2.yaml"
READY_DEADLINE_S = 90.0
STOP_DEADLINE_S = 30.0


class InfraError(RuntimeError):
    """Something the operator must fix; the message says what."""


@dataclass(frozen=True)
class Infra:
    profile: str = "run"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    mongo_port: int = 27017
    kafka_heap: str = "768m"

    @property
    def root(self) -> Path:
        return LOCAL_ROOT / self.profile

    @property
    def kafka_bootstrap(self) -> str:
        return f"localhost:{self.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://localhost:{self.mongo_port}/?directConnection=true"


# --- processes ---------------------------------------------------------------------------------


def _pid_alive(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    try:
        zombie = "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    # The JVM launcher re-executes itself at start; for that instant its cmdline reads empty.
    return not zombie and (marker in cmdline or cmdline == "")


def _read_pid(pid_file: Path, marker: str) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if _pid_alive(pid, marker):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(
    what: str,
    probe: Callable[[], bool],
    log: Path,
    deadline_s: float = READY_DEADLINE_S,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not alive():
            raise InfraError(f"{what} exited during start-up; last lines of {log}:\n{_tail(log)}")
        with contextlib.suppress(Exception):
            if probe():
                return
        time.sleep(0.25)
    raise InfraError(f"{what} not ready after {deadline_s:.0f}s; last lines of {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _spawn(cmd: list[str], log: Path, pid_file: Path) -> int:
    """Start a daemon detached from this process (its own session, reparented), and record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    launcher = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" >>"$COD_DAEMON_LOG" 2>&1 </dev/null & echo $!', "sh", *cmd],
        env=os.environ | {"COD_DAEMON_LOG": str(log)},
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    pid = int(launcher.stdout.strip())
    pid_file.write_text(str(pid))
    return pid


def _stop(pid_file: Path, marker: str, name: str) -> bool:
    pid = _read_pid(pid_file, marker)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE_S
    while time.monotonic() < deadline and _pid_alive(pid, marker):
        time.sleep(0.2)
    if _pid_alive(pid, marker):
        print(f"{name} did not stop within {STOP_DEADLINE_S:.0f}s; killing it", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


# --- Kafka --------------------------------------------------------------------------------------

KAFKA_MARKER = "kafka.Kafka"


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java:
        raise InfraError("no Java runtime found: install a JDK 17+ (apt-get install default-jdk-headless)")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    version = out.split('"')[1] if '"' in out else "0"
    if int(version.split(".")[0]) < 17:
        raise InfraError(f"Kafka 4 needs Java 17 or newer; {java} is {version}")
    return java


def kafka_libs() -> Path:
    """Fetch the broker's jars once (cached by the pom's hash) and return their folder."""
    return maven_libs(KAFKA_POM, "kafka-jars", "Apache Kafka's jars")


def maven_libs(pom: Path, cache: str, what: str) -> Path:
    """Fetch the runtime dependencies of a pom from Maven Central once (cached under `.local/`,
    keyed by the pom's hash) and return their folder."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    libs = LOCAL_ROOT / cache / digest
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError(f"Maven (mvn) is needed to fetch {what}: apt-get install maven")
    tmp = libs.with_name(digest + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"fetching {what} with Maven…", flush=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InfraError(f"Maven could not fetch {what}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    (tmp / ".complete").write_text(digest)
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    return libs


def _kafka_properties(infra: Infra, data: Path) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=localhost:{infra.kafka_controller_port}",
            f"listeners=PLAINTEXT://localhost:{infra.kafka_port},CONTROLLER://localhost:{infra.kafka_controller_port}",
            f"advertised.listeners=PLAINTEXT://localhost:{infra.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data / 'logs'}",
            "auto.create.topics.enable=false",
            "num.partitions=4",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.cleaner.backoff.ms=1000",
            "",
        ]
    )


async def _kafka_answers(bootstrap: str) -> bool:
    import logging

    from aiokafka.admin import AIOKafkaAdminClient  # the venv's; imported late so --help is cheap

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    finally:
        await admin.close()


def kafka_up(infra: Infra) -> None:
    data = infra.root / "kafka"
    pid_file = infra.root / "kafka.pid"
    log = infra.root / "kafka.log"
    if _read_pid(pid_file, KAFKA_MARKER) is not None:
        _wait("Kafka", lambda: asyncio.run(_kafka_answers(infra.kafka_bootstrap)), log)
        return
    for port in (infra.kafka_port, infra.kafka_controller_port):
        if _port_open(port):
            raise InfraError(
                f"port {port} is taken by a process this project did not start; "
                "stop it or choose other ports (--kafka-port / --kafka-controller-port)"
            )
    java = java_binary()
    libs = kafka_libs()
    data.mkdir(parents=True, exist_ok=True)
    props = data / "server.properties"
    props.write_text(_kafka_properties(infra, data))
    classpath = f"{libs}/*"
    if not (data / "logs" / "meta.properties").exists():
        shutil.rmtree(data / "logs", ignore_errors=True)
        result = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                # One form argparse reads even when the id starts with "-" (1 in 64 random ids).
                f"--cluster-id={_cluster_id()}",
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka's storage failed:\n{result.stdout}{result.stderr}")
    pid = _spawn(
        [
            java,
            f"-Xmx{infra.kafka_heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            "-cp",
            classpath,
            KAFKA_MARKER,
            str(props),
        ],
        log,
        pid_file,
    )
    _wait(
        "Kafka",
        lambda: asyncio.run(_kafka_answers(infra.kafka_bootstrap)),
        log,
        alive=lambda: _pid_alive(pid, KAFKA_MARKER),
    )


def _cluster_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def kafka_down(infra: Infra) -> bool:
    return _stop(infra.root / "kafka.pid", KAFKA_MARKER, "Kafka")


def kafka_kill(infra: Infra) -> None:
    """SIGKILL the broker (fault tests); `kafka_up` restarts it on the same data."""
    pid = _read_pid(infra.root / "kafka.pid", KAFKA_MARKER)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_DEADLINE_S
        while _pid_alive(pid, KAFKA_MARKER) and time.monotonic() < deadline:
            time.sleep(0.1)
        (infra.root / "kafka.pid").unlink(missing_ok=True)


# --- SecantusDB ---------------------------------------------------------------------------------

MONGO_MARKER = "secantusd"


def _mongo_answers(uri: str) -> bool:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]]
    with MongoClient(uri, serverSelectionTimeoutMS=1000) as client:
        client.admin.command("ping")
    return True


def mongo_up(infra: Infra) -> None:
    pid_file = infra.root / "mongo.pid"
    log = infra.root / "mongo.log"
    if _read_pid(pid_file, MONGO_MARKER) is not None:
        _wait("SecantusDB", lambda: _mongo_answers(infra.mongo_uri), log)
        return
    if _port_open(infra.mongo_port):
        raise InfraError(
            f"port {infra.mongo_port} is taken by a process this project did not start; "
            "stop it or choose another port (--mongo-port)"
        )
    server = Path(sys.executable).parent / "secantusd-py"
    if not server.exists():
        raise InfraError(f"{server} is missing: run `uv sync` (secantusdb is a dev dependency)")
    data = infra.root / "mongo"
    data.mkdir(parents=True, exist_ok=True)
    pid = _spawn(
        [
            str(server),
            "--host",
            "127.0.0.1",
            "--port",
            str(infra.mongo_port),
            "--storage-path",
            str(data),
            "--cache-size",
            "512M",
            "--log-level",
            "WARNING",
        ],
        log,
        pid_file,
    )
    _wait(
        "SecantusDB",
        lambda: _mongo_answers(infra.mongo_uri),
        log,
        alive=lambda: _pid_alive(pid, MONGO_MARKER),
    )


def mongo_down(infra: Infra) -> bool:
    return _stop(infra.root / "mongo.pid", MONGO_MARKER, "SecantusDB")


# --- both ---------------------------------------------------------------------------------------


def up(infra: Infra, fresh: bool = False) -> None:
    """Start Kafka and SecantusDB (wiping their data first when `fresh`), and wait until ready."""
    if fresh:
        down(infra)
        shutil.rmtree(infra.root, ignore_errors=True)
    infra.root.mkdir(parents=True, exist_ok=True)
    mongo_up(infra)
    kafka_up(infra)


def down(infra: Infra) -> None:
    kafka_down(infra)
    mongo_down(infra)


def status(infra: Infra) -> dict[str, bool]:
    return {
        "kafka": _read_pid(infra.root / "kafka.pid", KAFKA_MARKER) is not None,
        "mongo": _read_pid(infra.root / "mongo.pid", MONGO_MARKER) is not None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local.infra",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["install", "up", "down", "status"])
    parser.add_argument("--profile", default="run", help="data folder under .local/ (default: run)")
    parser.add_argument("--kafka-port", type=int, default=int(os.environ.get("COD_LOCAL_KAFKA_PORT", 9092)))
    parser.add_argument(
        "--kafka-controller-port",
        type=int,
        default=int(os.environ.get("COD_LOCAL_KAFKA_CONTROLLER_PORT", 9093)),
    )
    parser.add_argument("--mongo-port", type=int, default=int(os.environ.get("COD_LOCAL_MONGO_PORT", 27017)))
    parser.add_argument("--fresh", action="store_true", help="wipe the profile's data before starting")
    args = parser.parse_args(argv)
    infra = Infra(
        profile=args.profile,
        kafka_port=args.kafka_port,
        kafka_controller_port=args.kafka_controller_port,
        mongo_port=args.mongo_port,
    )
    try:
        if args.command == "install":
            java_binary()
            print(f"Kafka jars in {kafka_libs()}")
        elif args.command == "up":
            up(infra, fresh=args.fresh)
            print(f"Kafka on {infra.kafka_bootstrap}, SecantusDB on {infra.mongo_uri}")
        elif args.command == "down":
            down(infra)
        else:
            for name, running in status(infra).items():
                print(f"{name}: {'running' if running else 'stopped'}")
    except InfraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The services as local processes (`python -m services.<name>`), for `make run` and the tests."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.local.infra import REPO_ROOT, Infra

DEFAULT_PORTS = {"ingest": 8000, "catalogue": 8001, "scoring": 8002, "publisher": 8003, "backoffice": 8004}


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, deadline_s: float = 90.0) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited during start-up; see {self.log}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {deadline_s:.0f}s; see {self.log}:\n{self.tail()}")

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then wait for the graceful shutdown; SIGKILL past the timeout. The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@functools.cache
def code_version() -> str:
    """The checked-out commit, published with the method of the results."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip() or "unknown"


def service_env(infra: Infra, port: int, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment, `COD_*` settings included (so an operator can try one locally), under
    what the local infrastructure imposes (where Kafka and the store are, the port), under `overrides`."""
    env = dict(os.environ)
    env |= {
        "COD_CODE_VERSION": code_version(),
        "COD_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "COD_MONGO_URI": infra.mongo_uri,
        "COD_HTTP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    return env | (overrides or {})


def make_services(
    infra: Infra,
    ports: dict[str, int] | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, ServiceProcess]:
    ports = ports or DEFAULT_PORTS
    # Where the workspace reaches the others' APIs (the services talk to each other only through Kafka).
    urls = {"ingest": "COD_INGEST_URL", "scoring": "COD_SCORING_URL", "publisher": "COD_PUBLISHER_URL"}
    extra = {variable: f"http://127.0.0.1:{ports[name]}" for name, variable in urls.items() if name in ports}
    if "ingest" in ports:
        extra["COD_FORM_PUBLIC_URL"] = extra["COD_INGEST_URL"]
        # The one local ingest is slot 0; a second one (a test's replica) must be given another slot.
        extra["COD_INGEST_SLOT"] = "0"
    if "publisher" in ports:
        extra["COD_RESULTS_PUBLIC_URL"] = extra["COD_PUBLISHER_URL"]
    extra |= overrides or {}
    return {
        name: ServiceProcess(name, port, service_env(infra, port, extra), infra.root / "logs" / f"{name}.log")
        for name, port in ports.items()
    }

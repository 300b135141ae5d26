"""The five services as real processes (`python -m services.<name>`) on the real infrastructure."""

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from playwright.async_api import Browser, async_playwright

from deploy.local.infra import Infra
from deploy.local.mail import MailSink
from deploy.local.processes import ServiceProcess, make_services
from services.catalogue.settings import CatalogueSettings
from shared.contracts import utc_now

ADMIN_TOKEN = "test-admin-token"
STAFF_NAME, STAFF_PASSWORD = "agent", "test-staff-password"
PORTS = {
    name: int(os.environ.get(f"COD_TEST_{name.upper()}_PORT", port))
    for name, port in {
        "ingest": 18000,
        "catalogue": 18001,
        "scoring": 18002,
        "publisher": 18003,
        "backoffice": 18004,
        "smtp": 18025,
    }.items()
}
FOLLOWUP_KEY = Fernet.generate_key().decode()
# Short settle so closing tests do not wait long: the publisher waits produce timeout + 1 s.
SETTINGS = {
    "COD_ENVIRONMENT": "test",
    "COD_ADMIN_TOKEN": ADMIN_TOKEN,
    "COD_KAFKA_PRODUCE_TIMEOUT_S": "2",
    "COD_POLL_INTERVAL_S": "0.2",
    "COD_LAG_INTERVAL_S": "1",
    "COD_LOG_LEVEL": "INFO",
    # Every test client is 127.0.0.1: the per-client rate limit is tested on an ingest of its own.
    "COD_RATE_LIMIT_BURST": "1000000",
    "COD_PUBLIC_URL": f"http://127.0.0.1:{PORTS['ingest']}",
    "COD_STAFF_BOOTSTRAP": f"{STAFF_NAME}:{STAFF_PASSWORD}",
    "COD_LIVE_POLL_S": "0.2",
    # The follow-up e-mails go to the test's SMTP server (`mailbox`).
    "COD_SMTP_HOST": "127.0.0.1",
    "COD_SMTP_PORT": str(PORTS["smtp"]),
    "COD_FOLLOWUP_KEY": FOLLOWUP_KEY,
    # The test clients play the ingress: a client behind it is the address they forward (stuffing test).
    "COD_TRUSTED_PROXIES": '["127.0.0.1/32"]',
    # Stuffing detection on a time scale 60 times shorter than the defaults' (an hour in a minute).
    "COD_DETECT_BURST_WINDOW_S": "10",
    "COD_DETECT_SAME_WINDOW_S": "10",
}
SERVICE_PORTS = {name: port for name, port in PORTS.items() if name != "smtp"}


@dataclass
class Pipeline:
    infra: Infra
    services: dict[str, ServiceProcess]
    census: Path

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def url(self, service: str) -> str:
        return self.services[service].url

    def define_consultation(self, opens_at: datetime, closes_at: datetime, cid: str | None = None) -> str:
        cid = cid or f"c-{uuid.uuid4().hex[:12]}"
        answer = httpx.put(
            f"{self.url('ingest')}/v1/consultations/{cid}",
            json={
                "title": f"Test {cid}",
                "opens_at": opens_at.isoformat(),
                "closes_at": closes_at.isoformat(),
            },
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return cid

    def open_consultation(self, seconds: float) -> str:
        now = utc_now()
        return self.define_consultation(now - timedelta(seconds=1), now + timedelta(seconds=seconds))

    def datasets(self, status: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url('catalogue')}/v1/datasets", params={"status": status, "limit": 1000})
        return list(answer.json()["items"])


@pytest.fixture(scope="session")
def mailbox() -> Iterator[MailSink]:
    """The SMTP server the services send to: it keeps every message in memory."""
    sink = MailSink(PORTS["smtp"])
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def pipeline(infra: Infra, mailbox: MailSink) -> Iterator[Pipeline]:
    # The catalogue reads a copy of the census, which tests may change (a dataset opening…).
    census = infra.root / "census.csv"
    shutil.copy(CatalogueSettings().census_path or "", census)
    services = make_services(infra, ports=SERVICE_PORTS, overrides=SETTINGS | {"COD_CENSUS_PATH": str(census)})
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        yield Pipeline(infra, services, census)
    finally:
        exit_codes = {name: service.stop() for name, service in services.items()}
    # Graceful shutdown: SIGTERM lets each service finish, commit and exit cleanly.
    assert exit_codes == dict.fromkeys(services, 0), exit_codes


CHROMIUM = "/usr/bin/chromium"
# As the machine's probe found: without these, Chromium's background connections are refused.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright (which cannot download a browser here)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()

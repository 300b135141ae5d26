"""Helpers of the end-to-end tests: posting, reading rankings, polling with a deadline, the census."""

import asyncio
import csv
import io
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from playwright.async_api import Browser, Page

from services.ingest.domain import respondent_token
from services.ingest.settings import DEV_PSEUDONYM_SECRET
from services.publisher.audit import consistent
from shared.contracts import PRIVACY_NOTICE
from shared.topics import RESULTS_PUBLISHED
from shared.web import REPO_ROOT
from tests.e2e.conftest import Pipeline

CONSENT = {"accepted": True, "notice": PRIVACY_NOTICE}


def issued_token(cid: str, seed: str) -> str:
    """A respondent token as ingest issues them (the test services run with the development key): what a
    client holds after a first answer. Tokens a client invents are refused."""
    return respondent_token(DEV_PSEUDONYM_SECRET.encode(), cid, seed)


AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


async def new_page(browser: Browser, javascript: bool, **options: Any) -> Page:
    """A page in a context of its own (its own cookies), French first."""
    context = await browser.new_context(java_script_enabled=javascript, locale="fr-FR", **options)
    return await context.new_page()


SCREENSHOTS = os.environ.get("COD_SCREENSHOTS_DIR")


async def shot(page: Page, name: str) -> None:
    """With COD_SCREENSHOTS_DIR set, keep a picture of the page (the README's screenshots come from here)."""
    if SCREENSHOTS:
        await page.screenshot(path=f"{SCREENSHOTS}/{name}.png", full_page=True)


async def tick(page: Page, control: str) -> None:
    """Check a radio or checkbox as a person does: the DSFR draws it on its label, which covers it."""
    await page.check(f"label[for='{control}']")


async def axe_violations(page: Page) -> list[str]:
    """WCAG 2.x A and AA violations that axe-core finds on the page as it stands, one line each.
    The page's context must bypass its CSP (`bypass_csp=True`), since axe is injected inline."""
    await page.add_script_tag(path=str(AXE))
    found = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}}).then(r => r.violations.map("
        "v => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', ')}`))",
        WCAG_A_AA,
    )
    return list(found)


def body_for(dataset_id: str, priority: str = "useful", profile: str = "citizen", **extra: Any) -> dict[str, Any]:
    """A valid response asking to open one dataset."""
    return {
        "respondent": {"profile": profile},
        "open_requests": [{"dataset_id": dataset_id, "priority": priority}],
        "consent": CONSENT,
    } | extra


async def post(client: httpx.AsyncClient, cid: str, body: dict[str, Any]) -> httpx.Response:
    """Submit a response, with a response_id of its own unless it brings one (a retry after a 503 is then safe)."""
    return await client.post(f"/v1/consultations/{cid}/responses", json={"response_id": uuid.uuid4().hex} | body)


async def submit(client: httpx.AsyncClient, cid: str, body: dict[str, Any], attempts: int = 5) -> httpx.Response:
    """Submit a response as a careful client does: on a 503, again with the same response_id after the
    `Retry-After` it gives (at most 1 s here), so that a response Kafka may have recorded counts once.
    The last answer; a loaded machine can make ingest miss its deadline now and then."""
    body = {"response_id": uuid.uuid4().hex} | body
    for _ in range(attempts - 1):
        answer = await post(client, cid, body)
        if answer.status_code != 503:
            return answer
        await asyncio.sleep(min(1.0, float(answer.headers.get("Retry-After", "1"))))  # the server's back-off
    return await post(client, cid, body)


async def rankings(client: httpx.AsyncClient, pipeline: Pipeline, cid: str, kind: str) -> dict[str, Any]:
    answer = await client.get(
        f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings",
        params={"kind": kind, "limit": 1000},
        headers=pipeline.admin(),
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def as_tuples(page: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(item["key"], item["score"], item["respondents"]) for item in page["items"]]


async def poll(what: str, check: Any, deadline_s: float, interval_s: float = 0.1) -> Any:
    """Call `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{what} not reached within {deadline_s}s; last: {last}")


async def poll_equal(what: str, get: Any, expected: Any, deadline_s: float, interval_s: float = 0.1) -> None:
    """Poll `get()` until it equals `expected`; at the deadline, fail showing the difference."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if await get() == expected:
            return
        await asyncio.sleep(interval_s)
    assert await get() == expected, f"{what} not reached within {deadline_s}s"


async def topic_messages(bootstrap: str, topic: str, keep: Callable[[Any], bool]) -> list[dict[str, Any]]:
    """The committed messages of a topic up to its end now, decoded, those `keep(record)` accepts."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        # A topic created a moment ago may not be in the first metadata: its partitions come with a later one.
        deadline = time.monotonic() + 15
        while not (partitions := list(consumer.assignment())):
            assert time.monotonic() < deadline, f"{topic}: no partition assigned in 15 s"
            await asyncio.sleep(0.05)
        end = await consumer.end_offsets(partitions)
        found = []
        for tp in partitions:
            while await consumer.position(tp) < end[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found += [json.loads(r.value) for r in batch.get(tp, []) if r.value and keep(r)]
        return found
    finally:
        await consumer.stop()


async def results_messages(bootstrap: str, cid: str) -> list[dict[str, Any]]:
    return await topic_messages(bootstrap, RESULTS_PUBLISHED, lambda record: record.key == cid.encode())


async def published_results(
    client: httpx.AsyncClient, pipeline: Pipeline, cid: str, deadline_s: float = 60, url: str | None = None
) -> dict[str, Any]:
    """The results once published, as the ministry sees them (administrators see them at close)."""

    async def published() -> dict[str, Any] | None:
        answer = await client.get(
            f"{url or pipeline.url('publisher')}/v1/consultations/{cid}/results", headers=pipeline.admin()
        )
        return dict(answer.json()) if answer.status_code == 200 else None

    return dict(await poll(f"results of {cid} published", published, deadline_s=deadline_s, interval_s=0.25))


def write_census(pipeline: Pipeline, rows: list[dict[str, str]], fields: list[str]) -> None:
    """Replace the census the catalogue reads (a copy the harness gives it); a refresh publishes it."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fields)
    writer.writeheader()
    writer.writerows(rows)
    pipeline.census.write_text(out.getvalue(), encoding="utf-8")


def census_rows(pipeline: Pipeline) -> tuple[list[dict[str, str]], list[str]]:
    reader = csv.DictReader(io.StringIO(pipeline.census.read_text(encoding="utf-8")))
    return list(reader), list(reader.fieldnames or [])


async def refresh(client: httpx.AsyncClient, pipeline: Pipeline) -> dict[str, object]:
    """Have the catalogue read its sources again now."""
    answer = await client.post(f"{pipeline.url('catalogue')}/v1/catalogue/refresh", headers=pipeline.admin())
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


# Responses of many kinds, as the pipeline, publisher and fault tests post them.
PROFILES = ["company", "researcher", "journalist", "local_authority", "tourism", "association", "student"]
KINDS = ["update_frequency", "export_format", "geolocation", "api_access", "documentation", "licence"]
# Free-text suggestions and the group the catalogue must put each in.
SUGGESTIONS = {
    "Registre des fanfares": "title:registre fanfare",
    "registre des Fanfares !": "title:registre fanfare",
    "Les kiosques à musique de France": "title:kiosque musique france",
    "Base des reliures numérisées de la Bibliothèque nationale de France": "dataset:53698f51a3a729239d2036fb",
}


def random_body(rng: random.Random, to_open: list[str], to_improve: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "respondent": {"profile": rng.choice(PROFILES)},
        "open_requests": [
            {"dataset_id": d, "priority": rng.choice(["essential", "important", "useful"])}
            for d in rng.sample(to_open, rng.randrange(1, 4))
        ],
        "improvement_requests": [
            {"dataset_id": d, "kinds": rng.sample(KINDS, rng.randrange(1, 3))}
            for d in rng.sample(to_improve, rng.randrange(0, 3))
        ],
        "consent": CONSENT,
    }
    if rng.random() < 0.3:
        body["suggestions"] = [{"title": rng.choice(list(SUGGESTIONS))}]
    return body


async def files_of(client: httpx.AsyncClient, base: str, cid: str, headers: dict[str, str]) -> dict[str, bytes]:
    """Every published file, one version of each: read again while a republication (a commitment
    changed) makes the set read mix two versions, until the data package's hashes hold."""

    async def read() -> dict[str, bytes] | None:
        index = await client.get(f"{base}/v1/consultations/{cid}/results/files", headers=headers)
        assert index.status_code == 200, index.text
        files = {}
        for entry in index.json()["files"]:
            answer = await client.get(f"{base}{entry['url']}", headers=headers)
            assert answer.status_code == 200, answer.text
            files[entry["name"]] = answer.content
        return files if consistent(files) else None

    files: dict[str, bytes] = await poll("one version of every published file", read, deadline_s=30, interval_s=0.2)
    return files


def assert_valid_package(files: dict[str, bytes], directory: Path) -> None:
    """The published files, written to `directory`, make a data package `frictionless` validates."""
    from frictionless import validate

    for name, data in files.items():
        (directory / name).write_bytes(data)
    report = validate(str(directory / "datapackage.json"))
    assert report.valid, report.flatten(["resource", "rowNumber", "fieldName", "type", "note"])


async def audited(*args: str) -> str:
    """What the audit command prints for `args` (a results URL or a directory, then options), once it
    has exited 0 with a MATCH."""
    audit = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "services.publisher.audit", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await asyncio.wait_for(audit.communicate(), 120))[0].decode()
    assert audit.returncode == 0, out
    assert "MATCH" in out
    return out


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = dict(answer.json())
    assert problem["status"] == status
    assert problem["title"]
    return problem

"""Every running service's /metrics: valid for `promtool check metrics`, and the documented series
(docs/metrics.md) present where they belong and moving when the pipeline works."""

import asyncio
import re
import shutil
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from shared.topics import RESPONSES_ENRICHED, RESPONSES_SUBMITTED
from tests.e2e.conftest import STAFF_NAME, STAFF_PASSWORD, Pipeline
from tests.e2e.helpers import body_for, poll, post, published_results

DOCUMENTED = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
# Series that move only under faults (a replica racing, MongoDB blocked, the two computations of the
# results differing) or under load (lag, while the pipeline keeps up, stays 0): present, but not
# expected to move in this run.
MOVE_UNDER_FAULTS_ONLY = {
    "publisher_consumer_lag_messages",
    "scoring_batch_retries_total",
    "scoring_ballot_conflicts_total",
    "publisher_disagreements_total",
    "publisher_publications_in_progress",
    "publisher_unpublished_close_age_seconds",
    "backoffice_batch_retries_total",
    # Moves when a commitment is recorded for a respondent who opted in: tests/e2e/test_followup.py checks it.
    "backoffice_followup_emails_total",
    # Move when staff decide on a flagged cluster: tests/e2e/test_scoring_exclusions.py checks them.
    "scoring_exclusion_decisions_total",
    "scoring_excluded_respondent_moves_total",
    "scoring_excluded_respondents",
}


def documented() -> dict[str, list[str]]:
    """Metric name -> services that expose it, from the documentation's table."""
    found = {}
    for name, services in re.findall(r"^\| `([a-z_]+)` \| ([a-z, ]+) \|", DOCUMENTED.read_text(), re.MULTILINE):
        found[name] = ["ingest", "catalogue", "scoring", "publisher", "backoffice"] if services == "all" else [services]
    return found


def values(text: str, name: str) -> dict[str, float]:
    """Every sample of a metric family: series (name and labels) -> value."""
    samples = {}
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            if re.match(re.escape(name) + r"(_total|_count|_sum|_bucket|_created)?(\{|$)", series):
                samples[series] = float(value)
    return samples


async def staff_signs_in_and_out(pipeline: Pipeline) -> None:
    """A staff member signs in to the workspace and out again: its sign-in and audit series move."""
    async with httpx.AsyncClient(base_url=pipeline.url("backoffice"), timeout=30) as staff:
        form = await staff.get("/connexion")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        signed_in = await staff.post(
            "/connexion", data={"csrf_token": csrf.group(1), "username": STAFF_NAME, "password": STAFF_PASSWORD}
        )
        assert signed_in.status_code == 303, signed_in.text
        page = await staff.get("/consultations")
        session_csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert session_csrf is not None
        assert (await staff.post("/deconnexion", data={"csrf_token": session_csrf.group(1)})).status_code == 303


async def scrape(client: httpx.AsyncClient, pipeline: Pipeline) -> dict[str, str]:
    return {name: (await client.get(f"{service.url}/metrics")).text for name, service in pipeline.services.items()}


async def test_every_service_serves_valid_metrics_and_the_documented_series_move(pipeline: Pipeline) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by deploy/local/bootstrap.sh"
    series = documented()
    assert len(series) >= 20
    dataset = pipeline.datasets("not_open")[0]["dataset_id"]
    cid = pipeline.open_consultation(seconds=3600)
    async with httpx.AsyncClient(timeout=30) as client:
        before = await scrape(client, pipeline)

        # Work for every series: accepted, refused (invalid, too large), a suggestion, dead letters.
        ingest = pipeline.url("ingest")
        async with httpx.AsyncClient(base_url=ingest, timeout=30) as api:
            for n in range(5):
                answer = await post(api, cid, body_for(dataset, suggestions=[{"title": f"Registre des fanfares {n}"}]))
                assert answer.status_code == 202, answer.text
            assert (await post(api, cid, {"respondent": {}})).status_code == 422
            too_large = await api.post(
                f"/v1/consultations/{cid}/responses", content=b"{" + b" " * 2_000_000 + b"}",
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            assert too_large.status_code == 413
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.infra.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(RESPONSES_SUBMITTED, b"not a response", key=b"metrics-test")
            await producer.send_and_wait(RESPONSES_ENRICHED, b"not an enriched response", key=b"metrics-test")
        finally:
            await producer.stop()
        closed = await client.post(f"{ingest}/v1/consultations/{cid}/close", headers=pipeline.admin())
        assert closed.status_code == 200
        await published_results(client, pipeline, cid)
        await staff_signs_in_and_out(pipeline)

        async def not_moved() -> list[str]:
            after = await scrape(client, pipeline)
            return [
                name
                for name, services in series.items()
                if name not in MOVE_UNDER_FAULTS_ONLY
                and all(values(after[s], name) == values(before[s], name) for s in services)
            ]

        async def all_moved() -> bool:
            return not await not_moved()

        try:
            await poll("every documented series moving", all_moved, deadline_s=30, interval_s=0.5)
        except AssertionError:
            raise AssertionError(f"series that did not move: {await not_moved()}") from None

        after = await scrape(client, pipeline)
    for service, text in after.items():
        checked = await asyncio.create_subprocess_exec(
            promtool,
            "check",
            "metrics",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out = (await checked.communicate(text.encode()))[0].decode()
        assert checked.returncode == 0, f"{service}: {out}"
    lag = values(after["publisher"], "publisher_consumer_lag_messages")
    assert {re.search(r'group="(\w+)"', k).group(1) for k in lag} == {"catalogue", "scoring"}  # type: ignore[union-attr]
    for name, services in series.items():
        for service in services:
            declared = {f"# TYPE {name} ", f"# TYPE {name.removesuffix('_total')} "}
            assert any(d in after[service] for d in declared), f"{name} missing from {service}"

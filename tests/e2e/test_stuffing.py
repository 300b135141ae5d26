"""Ballot stuffing, end to end with the services as processes: 2,000 honest respondents (some behind
networks shared by 30), an attack of 300 near-identical answers from one network within a minute, and
one answer set from 150 networks over ten minutes. Detection flags the attacks and not the honest;
staff exclude them (one through the page, without JavaScript, the rest by the API); scoring's filtered
ranking equals the honest-only computation while the raw one still shows the attacks; the published
files carry `exclusions.csv`, the rule and the count set aside, and the audit matches.

Time is compressed 60 times (an hour in a minute): the pipeline's detection windows are 10 s where the
defaults are 10 minutes (`SETTINGS` in conftest), and the population is the benchmark's
(`benchmarks.stuffing_detection`), posted on that scale."""

import asyncio
import csv
import io
import itertools
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page

from benchmarks.stuffing_detection import Answer, population
from services.backoffice.detection import DEFAULT_SETTINGS, Respondent, detect
from tests.e2e.conftest import STAFF_NAME, STAFF_PASSWORD, Pipeline
from tests.e2e.helpers import (
    CONSENT,
    KINDS,
    PROFILES,
    assert_valid_package,
    audited,
    axe_violations,
    files_of,
    new_page,
    poll,
    published_results,
)
from tests.e2e.truth import Accepted, expected_rankings, ranked

SCALE = 60  # seconds of the synthetic consultation per second of the test
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
)
REASONS = {
    "attack-a": "Rafale scriptée de réponses quasi identiques depuis un même réseau",
    "attack-b": "Même jeu de réponses envoyé depuis de nombreux réseaux en quelques minutes",
}


def body_of(rng: random.Random, answer: Answer) -> dict[str, Any]:
    return {
        "respondent": {"profile": rng.choice(PROFILES)},
        "open_requests": [{"dataset_id": d, "priority": p} for d, p in answer.open],
        "improvement_requests": [{"dataset_id": d, "kinds": rng.sample(KINDS, 1)} for d in answer.improve],
        "consent": CONSENT,
    }


class Networks:
    """Each synthetic network an IPv4 /24 of its own; each client an address in it."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._index: dict[str, int] = {}

    def client(self, answer: Answer) -> dict[str, str]:
        n = self._index.setdefault(answer.network, len(self._index))
        address = f"10.{n // 256}.{n % 256}.{self._rng.randrange(1, 255)}"
        agent = AGENTS[2] if answer.who.startswith("attack") else AGENTS[n % 2]
        return {"X-Forwarded-For": address, "User-Agent": agent}


async def post_on_schedule(
    pipeline: Pipeline, cid: str, answers: list[Answer], rng: random.Random
) -> dict[str, tuple[str, Accepted]]:
    """Post each answer at its time, compressed; response id → (who, what was accepted)."""
    networks = Networks(rng)
    planned = [(answer, body_of(rng, answer), networks.client(answer)) for answer in answers]
    accepted: dict[str, tuple[str, Accepted]] = {}
    gate = asyncio.Semaphore(48)
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=60) as client:

        async def send(answer: Answer, body: dict[str, Any], headers: dict[str, str]) -> None:
            await asyncio.sleep(max(0.0, start + answer.at_s / SCALE - time.monotonic()))  # pacing, not waiting
            async with gate:
                reply = await client.post(f"/v1/consultations/{cid}/responses", json=body, headers=headers)
            assert reply.status_code == 202, reply.text
            got = reply.json()
            accepted[got["response_id"]] = (
                answer.who,
                Accepted(body, got["response_id"], got["respondent_token"], got["received_at"]),
            )

        await asyncio.gather(*(send(*plan) for plan in planned))
    return accepted


async def signed_in(browser: Browser, workspace: str, javascript: bool) -> Page:
    page = await new_page(browser, javascript=javascript, bypass_csp=True)
    await page.goto(f"{workspace}/connexion")
    await page.fill("#username", STAFF_NAME)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("#sign-in")
    await page.wait_for_url("**/consultations")
    return page


def lag(accepted: dict[str, tuple[str, Accepted]], answers: list[Answer]) -> str:
    """How far receipts strayed from the schedule (for a failure's message)."""
    times = sorted(a.received for _, a in accepted.values())
    span = (times[-1] - times[0]).total_seconds()
    return f"{len(times)} receipts over {span:.1f} s, scheduled over {answers[-1].at_s / SCALE:.1f} s"


def missed_where(
    missed: set[str], clusters: list[dict[str, Any]], accepted: dict[str, tuple[str, Accepted]]
) -> list[tuple[str, str, str | None]]:
    """For a failure's message: each attack response left counted, when it came and in which cluster."""
    home = {rid: c["cluster_id"] for c in clusters for rid in c["response_ids"]}
    return sorted((accepted[rid][0], accepted[rid][1].received_at, home.get(rid)) for rid in missed)[:20]


def as_seen(accepted: dict[str, tuple[str, Accepted]]) -> str:
    """For a failure's message: detection recomputed over the receipts the test saw (attack A's one
    network, every other respondent's own), each kind's share flagged, and attack B's receipts; tells a
    difference in what the workspace stored from one in timing."""
    respondents = []
    for rid, (who, seen) in accepted.items():
        asks = frozenset(
            [f"open:{r['dataset_id']}" for r in seen.body["open_requests"]]
            + [f"improve:{r['dataset_id']}" for r in seen.body["improvement_requests"]]
        )
        respondents.append(
            Respondent(rid, rid, seen.received, seen.received, "attacker" if who == "attack-a" else rid, None, asks)
        )
    settings = DEFAULT_SETTINGS.model_copy(update={"burst_window_s": 10, "same_window_s": 10})
    flagged = {m.response_id for c in detect(respondents, settings) for m in c.members}
    kinds = Counter(who for who, _ in accepted.values())
    shares = {w: round(sum(accepted[r][0] == w for r in flagged) / n, 3) for w, n in kinds.items()}
    b = sorted(seen.received for who, seen in accepted.values() if who == "attack-b")
    gap = max((later - earlier).total_seconds() for earlier, later in itertools.pairwise(b))
    span = (b[-1] - b[0]).total_seconds()
    return f"recomputed here: {shares}; attack B received over {span:.1f} s, widest gap {gap:.2f} s"


def suggestion_key(title: str) -> str:
    return title


async def test_stuffing_is_flagged_set_aside_by_staff_and_published_raw_and_filtered(
    pipeline: Pipeline, browser: Browser, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")][:120]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:60]
    answers, pushed = population(rng, to_open, to_improve, honest=2000, span_s=3600)
    answers = [a for a in answers if a.who != "attack-c"]  # the shape detection misses: the benchmark shows it
    cid = pipeline.open_consultation(seconds=3600)
    admin = pipeline.admin()
    workspace = pipeline.url("backoffice")
    accepted = await post_on_schedule(pipeline, cid, answers, rng)
    assert len(accepted) == len(answers)
    who_of = {rid: who for rid, (who, _) in accepted.items()}

    async with httpx.AsyncClient(timeout=60) as client:

        async def detection_over_everyone() -> dict[str, Any] | None:
            """The clusters, once detection read every respondent of this consultation (the workspace
            may still be consuming an earlier test's responses: a count over all topics says nothing)."""
            listed = await client.get(f"{workspace}/v1/consultations/{cid}/clusters", headers=admin)
            assert listed.status_code == 200, listed.text
            page: dict[str, Any] = listed.json()
            return page if page["respondents"] == len(answers) else None

        clusters = (
            await poll("detection over every respondent", detection_over_everyone, deadline_s=240, interval_s=0.5)
        )["clusters"]
        assert (await client.get(f"{workspace}/v1/consultations/{cid}/clusters")).status_code == 401

        # What detection flags: nearly all of each attack, nearly none of the honest.
        flagged = {rid for c in clusters for rid in c["response_ids"]}
        totals = Counter(who_of.values())
        caught = Counter(who_of[rid] for rid in flagged)
        shares = {who: caught[who] / totals[who] for who in totals}
        assert shares["attack-a"] >= 0.95, (shares, lag(accepted, answers))
        assert shares["attack-b"] >= 0.95, (shares, lag(accepted, answers), as_seen(accepted), clusters)
        mixed = [
            (c["cluster_id"], c["signals"], c["networks"], Counter(who_of[rid] for rid in c["response_ids"]))
            for c in clusters
        ]
        assert shares["honest"] <= 0.01, (shares, mixed, lag(accepted, answers))
        pushing = [c for c in clusters if f"open:{pushed}" in c["datasets"]]
        assert pushing, clusters

        # Staff decide: a cluster made of an attack is excluded, any other cleared. One through the page.
        decisions: dict[str, str] = {}
        for c in clusters:
            members = Counter(who_of[rid] for rid in c["response_ids"])
            main, n = members.most_common(1)[0]
            decisions[c["cluster_id"]] = main if main != "honest" and n >= 0.9 * len(c["response_ids"]) else "clear"
        by_page = next(cid_ for cid_, d in decisions.items() if d == "attack-b")
        checker = await signed_in(browser, workspace, javascript=True)  # axe runs as a script
        staff = await signed_in(browser, workspace, javascript=False)
        await checker.goto(f"{workspace}/consultations/{cid}/grappes")
        assert await axe_violations(checker) == [], checker.url
        await staff.goto(f"{workspace}/consultations/{cid}/grappes")
        await staff.click(f"#cluster-{by_page} a")
        await checker.goto(staff.url)
        assert await axe_violations(checker) == [], checker.url
        await staff.fill("#reason", REASONS["attack-b"])
        await staff.click("#exclude")
        await staff.wait_for_url(f"**/grappes?decision=exclude#cluster-{by_page}")
        assert await staff.get_attribute(f"#cluster-{by_page}", "data-decision") == "exclude"
        await checker.goto(staff.url)
        assert await axe_violations(checker) == [], checker.url
        for cluster_id, decision in decisions.items():
            if cluster_id == by_page:
                continue
            verb = "clear" if decision == "clear" else "exclude"
            reason = REASONS.get(decision, "Réponses variées : un réseau partagé, pas une même main")
            answer = await client.post(
                f"{workspace}/v1/consultations/{cid}/clusters/{cluster_id}/{verb}",
                json={"reason": reason},
                headers=admin,
            )
            assert answer.status_code == 200, answer.text
        refused = await client.post(
            f"{workspace}/v1/consultations/{cid}/clusters/inconnue/exclude", json={"reason": "test"}, headers=admin
        )
        assert refused.status_code == 404
        no_reason = await client.post(
            f"{workspace}/v1/consultations/{cid}/clusters/{by_page}/exclude", json={"reason": " "}, headers=admin
        )
        assert no_reason.status_code == 422

        excluded = {rid for c in clusters if decisions[c["cluster_id"]] != "clear" for rid in c["response_ids"]}
        honest = [a for rid, (who, a) in accepted.items() if who == "honest"]
        everyone = [a for _, a in accepted.values()]
        kept = [a for rid, (_, a) in accepted.items() if rid not in excluded]
        missed = {rid for rid, who in who_of.items() if who != "honest"} - excluded
        assert not missed, (len(missed), mixed, lag(accepted, answers), missed_where(missed, clusters, accepted))
        expected_filtered = expected_rankings(kept, suggestion_key)
        expected_raw = expected_rankings(everyone, suggestion_key)
        if not excluded & {rid for rid, who in who_of.items() if who == "honest"}:
            assert expected_filtered == expected_rankings(honest, suggestion_key)

        async def scoring(view: str) -> dict[str, Any]:
            answer = await client.get(
                f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings",
                params={"kind": "open", "limit": 1000, "view": view},
                headers=admin,
            )
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        def as_tuples(page: dict[str, Any]) -> list[tuple[str, int, int]]:
            return [(item["key"], item["score"], item["respondents"]) for item in page["items"]]

        async def filtered_is_honest() -> dict[str, Any] | None:
            page = await scoring("filtered")
            return page if as_tuples(page) == ranked(expected_filtered["open"]) else None

        filtered = await poll("the filtered ranking without the attacks", filtered_is_honest, deadline_s=60)
        assert filtered["view"] == "filtered"
        assert filtered["excluded_respondents"] == len(excluded)
        raw = await scoring("raw")
        assert as_tuples(raw) == ranked(expected_raw["open"])
        assert raw["excluded_respondents"] == len(excluded)
        # The raw ranking still shows the attacks: the dataset no honest respondent names, among the first.
        attackers = sum(who != "honest" for who in who_of.values())
        pushed_raw = next(item for item in raw["items"] if item["key"] == pushed)
        assert (pushed_raw["respondents"], pushed_raw["score"]) == (attackers, 3 * attackers)
        assert pushed_raw["rank"] <= 5
        assert pushed not in {item["key"] for item in filtered["items"]}
        default = await client.get(
            f"{pipeline.url('scoring')}/v1/consultations/{cid}/rankings", params={"kind": "open"}, headers=admin
        )
        assert default.json()["view"] == "filtered"  # the default once anything is excluded

        # The close freezes the filtered rankings with the exclusions; decisions are closed then.
        closed = await client.post(f"{pipeline.url('ingest')}/v1/consultations/{cid}/close", headers=admin)
        assert closed.status_code == 200, closed.text
        results = await published_results(client, pipeline, cid, deadline_s=120)
        assert results["excluded_respondents"] == len(excluded)
        late = await client.post(
            f"{workspace}/v1/consultations/{cid}/clusters/{by_page}/clear", json={"reason": "trop tard"}, headers=admin
        )
        assert late.status_code == 409
        files = await files_of(client, pipeline.url("publisher"), cid, admin)

    rows = list(csv.DictReader(io.StringIO(files["exclusions.csv"].decode())))
    assert {r["cluster_id"] for r in rows} == {c for c, d in decisions.items() if d != "clear"}
    assert sum(int(r["respondents"]) for r in rows) == len(excluded)
    assert not any(rid in files["exclusions.csv"].decode() for rid in excluded)
    package = json.loads(files["datapackage.json"])
    assert "exclusions.csv" in {r["path"] for r in package["resources"]}
    method = json.loads(files["methode.json"])
    assert json.dumps(method, ensure_ascii=False).count(REASONS["attack-a"]) >= 1
    assert_valid_package(files, tmp_path)
    await audited(str(tmp_path))

"""Scoring under faults: SIGKILL at random points, restarts, a second replica, duplicates, amendments.

The rankings must end equal, exactly, to a hand computation over the responses ingest accepted."""

import asyncio
import random
import uuid
from typing import Any

import httpx
import pytest

from deploy.local.processes import ServiceProcess, service_env
from tests.e2e.conftest import SETTINGS, Pipeline
from tests.e2e.helpers import SUGGESTIONS, as_tuples, issued_token, poll_equal, post, random_body, rankings
from tests.e2e.truth import Accepted, expected_rankings, ranked

# A process killed mid-transaction leaves it open on the server until its lifetime limit (60 s):
# three kills may cost three minutes before everything is counted.
CONVERGENCE_S = 400
RESPONDENTS = 2000
STEP = RESPONDENTS // 6  # fault points: after 1/6, 2/6… of the respondents


async def post_until_answered(client: httpx.AsyncClient, cid: str, body: dict[str, Any]) -> httpx.Response:
    """What a careful client does: on a network error, send the same body (same response_id) again."""
    for _ in range(4):
        try:
            return await post(client, cid, body)
        except httpx.TransportError:
            continue
    return await post(client, cid, body)


@pytest.mark.faults
@pytest.mark.timeout(CONVERGENCE_S + 200)
async def test_rankings_stay_exact_through_sigkills_restarts_and_a_second_replica(pipeline: Pipeline) -> None:
    rng = random.Random(5)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:40]
    cid = pipeline.open_consultation(seconds=1800)
    accepted: list[Accepted] = []
    progress = {"respondents": 0}
    milestones = {n * STEP: asyncio.Event() for n in range(1, 6)}
    kill_at = sorted(rng.sample(sorted(milestones), 3))
    scoring = pipeline.services["scoring"]
    second = ServiceProcess(
        "scoring",
        18012,
        service_env(pipeline.infra, 18012, SETTINGS | {"COD_INSTANCE": "scoring-b"}),
        pipeline.infra.root / "logs" / "scoring-b.log",
    )
    faults: list[str] = []

    async def chaos() -> None:
        for milestone in sorted(milestones):
            await milestones[milestone].wait()
            if milestone == STEP:
                second.start()  # a second replica joins the consumer group: a rebalance
                faults.append("second replica started")
            if milestone in kill_at:
                scoring.kill()
                faults.append(f"SIGKILL at {milestone}")
                scoring.start()
                await asyncio.to_thread(scoring.wait_ready)
            if milestone == 4 * STEP:
                assert second.stop() == 0  # and leaves it: another rebalance
                faults.append("second replica stopped")

    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=60) as client:

        async def respondent(n: int) -> None:
            token = None if n % 7 == 0 else issued_token(cid, f"fault-{n:05d}-{uuid.uuid4().hex[:8]}")
            for submission in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15)):
                if submission and token is None:
                    break
                body = random_body(rng, to_open, to_improve)
                body["response_id"] = f"f-{n:05d}-{submission}-{uuid.uuid4().hex[:6]}"
                if token:
                    body["respondent"]["token"] = token
                for _ in range(2 if rng.random() < 0.1 else 1):
                    answer = await post_until_answered(client, cid, body)
                    assert answer.status_code == 202, answer.text
                    reply: dict[str, Any] = answer.json()
                    accepted.append(
                        Accepted(body, reply["response_id"], reply["respondent_token"], reply["received_at"])
                    )
            progress["respondents"] += 1
            for milestone, reached in milestones.items():
                if progress["respondents"] >= milestone:
                    reached.set()

        semaphore = asyncio.Semaphore(24)

        async def bounded(n: int) -> None:
            async with semaphore:
                await respondent(n)

        try:
            # A task group: if anything fails, the chaos stops with it instead of outliving the test.
            async with asyncio.TaskGroup() as group:
                group.create_task(chaos())
                for n in range(RESPONDENTS):
                    group.create_task(bounded(n))
        finally:
            second.stop()
        assert faults[0] == "second replica started"
        assert "second replica stopped" in faults
        assert [f for f in faults if f.startswith("SIGKILL")] == [f"SIGKILL at {m}" for m in kill_at]
        assert len(accepted) > 3000  # several thousand, duplicates and amendments included
        truth = expected_rankings(accepted, lambda title: SUGGESTIONS[title])
        for kind in ("open", "improve", "suggestions"):

            async def current(kind: str = kind) -> list[tuple[str, int, int]]:
                return as_tuples(await rankings(client, pipeline, cid, kind))

            await poll_equal(f"{kind} ranking after the faults", current, ranked(truth[kind]), deadline_s=CONVERGENCE_S)
        page = await rankings(client, pipeline, cid, "open")
        assert page["respondents"] == len({a.token for a in accepted})
        for item in page["items"]:
            assert item["by_profile"] == truth["open"][item["key"]].by_profile

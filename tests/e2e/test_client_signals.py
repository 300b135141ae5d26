"""Each accepted response carries coarse, keyed signals of its client — its network and browser family
hashed, and how long the web form took to fill — and never the client's address (groundwork for
telling stuffing apart)."""

import json
import re
import uuid
from typing import Any

import httpx

from shared.topics import RESPONSES_SUBMITTED
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import body_for, poll, topic_messages

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def submitted(bootstrap: str, cid: str) -> list[dict[str, Any]]:
    events = await topic_messages(bootstrap, RESPONSES_SUBMITTED, lambda record: cid.encode() in record.value)
    return [event for event in events if event["consultation_id"] == cid]


async def test_responses_carry_their_client_signals_and_not_their_client(pipeline: Pipeline) -> None:
    cid = pipeline.open_consultation(seconds=600)
    dataset = pipeline.datasets("not_open")[2]["dataset_id"]
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        page = await client.get(f"/consultations/{cid}", headers={"User-Agent": FIREFOX})
        served = re.search(r'name="served" value="([^"]+)"', page.text)
        assert served is not None
        form = {"profile": "student", f"open-{dataset}": "useful", "consent": "yes", "served": served.group(1)}
        by_form = await client.post(f"/consultations/{cid}", data=form, headers={"User-Agent": FIREFOX})
        assert by_form.status_code == 200, by_form.text
        forged = form | {"served": "1.forged", "response_id": uuid.uuid4().hex}
        assert (
            await client.post(f"/consultations/{cid}", data=forged, headers={"User-Agent": FIREFOX})
        ).status_code == 200
        by_api = await client.post(
            f"/v1/consultations/{cid}/responses", json=body_for(dataset), headers={"User-Agent": "curl/8.5.0"}
        )
        assert by_api.status_code == 202

    async def three() -> list[dict[str, Any]] | None:
        events = await submitted(pipeline.infra.kafka_bootstrap, cid)
        return events if len(events) == 3 else None

    events = await poll("the three responses in Kafka", three, deadline_s=20, interval_s=0.5)
    fingerprints = {e["client_fingerprint"] for e in events}
    assert len(fingerprints) == 2  # one network, two browser families
    timed = [e["fill_seconds"] for e in events if e["fill_seconds"] is not None]
    assert len(timed) == 1  # the forged stamp and the API tell no fill time
    assert 0 <= float(str(timed[0])) < 60
    assert not any("127.0.0.1" in json.dumps(e) for e in events)

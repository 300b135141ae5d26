"""The ministry's commitments and the approved excerpts, published with the results and followed
until done: files that validate and audit, republished on each change; the public follow-up page
(axe-clean) and its Atom feed, under the results' embargo; a withdrawn excerpt published nowhere."""

import csv
import io
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser
from pydantic import BaseModel

from shared.contracts import (
    CommitmentKind,
    CommitmentRecorded,
    CommitmentStatus,
    ExcerptApproved,
    ExcerptKind,
    StatusChange,
    utc_now,
)
from shared.topics import COMMITMENTS, EXCERPTS
from tests.e2e.anonymity import assert_nothing_identifies_anyone
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import (
    assert_valid_package,
    audited,
    axe_violations,
    files_of,
    new_page,
    poll,
    post,
    published_results,
    random_body,
)

MARKER = "Zorglubinette"  # written only in the withdrawn excerpt
ATOM = "{http://www.w3.org/2005/Atom}"
DONE_URL = "https://data.culture.gouv.fr/explore/dataset/engagement-tenu/"


async def produce(bootstrap: str, topic: str, events: list[tuple[str, BaseModel]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, event in events:
            await producer.send_and_wait(topic, event.model_dump_json().encode(), key=key.encode())
    finally:
        await producer.stop()


def commitment(
    cid: str, commitment_id: str, kind: CommitmentKind, row: dict[str, Any], **state: Any
) -> CommitmentRecorded:
    now = utc_now()
    history = state.pop("history", [StatusChange(status=CommitmentStatus.PLANNED, at=now, by="staff")])
    return CommitmentRecorded(
        event_id=str(uuid.uuid4()),
        occurred_at=now,
        consultation_id=cid,
        commitment_id=commitment_id,
        kind=kind,
        dataset_id=None if kind is CommitmentKind.ADD else row["key"],
        suggestion_key=row["key"] if kind is CommitmentKind.ADD else None,
        title=row["title"] or row["key"],
        service="Département des programmes numériques",
        target="2027-T2",
        status=history[-1].status,
        note_fr=f"Engagement {commitment_id}, note publique.",
        note_en=f"Commitment {commitment_id}, public note.",
        history=history,
        updated_at=now,
        **state,
    )


def excerpt(cid: str, excerpt_id: str, dataset_id: str, text: str, approved: bool) -> ExcerptApproved:
    return ExcerptApproved(
        event_id=str(uuid.uuid4()),
        occurred_at=utc_now(),
        consultation_id=cid,
        excerpt_id=excerpt_id,
        kind=ExcerptKind.IMPROVEMENT,
        dataset_id=dataset_id,
        title="Commentaire",
        text=text,
        approved=approved,
    )


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


async def test_commitments_are_published_with_the_results_and_followed_until_done(
    pipeline: Pipeline, browser: Browser, tmp_path: Path
) -> None:
    rng = random.Random(2027)
    to_open = [d["dataset_id"] for d in pipeline.datasets("not_open")][:12]
    to_improve = [d["dataset_id"] for d in pipeline.datasets("open")][:8]
    cid = pipeline.open_consultation(seconds=3600)
    bootstrap = pipeline.infra.kafka_bootstrap
    base = pipeline.url("publisher")
    page_url, feed_url = f"{base}/consultations/{cid}/suivi", f"{base}/consultations/{cid}/suivi.atom"

    posted: set[str] = set()  # what identifies respondents: it must be published nowhere
    async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=30) as client:
        for n in range(40):
            body = random_body(rng, to_open, to_improve)
            body["suggestions"] = [{"title": "Registre des fanfares", "description": f"Vue à Trifouillis-{n:02d}"}]
            body["respondent"] |= {"email": f"repondant{n:02d}@example.org", "organisation": f"Harmonie Bzzgrunt {n}"}
            answer = await post(client, cid, body)
            assert answer.status_code == 202, answer.text
            reply = answer.json()
            posted |= {reply["response_id"], reply["respondent_token"], body["respondent"]["email"]}
        posted |= {"@example.org", "Trifouillis", "Bzzgrunt"}
        closed = await client.post(f"/v1/consultations/{cid}/close", headers=pipeline.admin())
        assert closed.status_code == 200, closed.text
        results = await published_results(client, pipeline, cid, deadline_s=120)
        opened, improved, added = results["open"][1], results["improve"][0], results["suggestions"][0]

        # Before the publication date: the public is refused, clearly; the ministry sees the follow-up.
        refused = await client.get(page_url)
        assert refused.status_code == 403
        assert "seront publics le" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
        refused_feed = await client.get(feed_url)
        assert refused_feed.status_code == 403
        assert refused_feed.headers["content-type"] == "application/problem+json"
        assert (await client.get(page_url, headers=pipeline.admin())).status_code == 200

        await produce(
            bootstrap,
            COMMITMENTS,
            [
                (f"{cid}:ouvrir", commitment(cid, "ouvrir", CommitmentKind.OPEN, opened)),
                (f"{cid}:ameliorer", commitment(cid, "ameliorer", CommitmentKind.IMPROVE, improved)),
                (f"{cid}:ajouter", commitment(cid, "ajouter", CommitmentKind.ADD, added)),
            ],
        )
        approved_text = "Une mise à jour mensuelle rendrait ce jeu de données bien plus utile."
        await produce(
            bootstrap,
            EXCERPTS,
            [
                (f"{cid}:x1", excerpt(cid, "x1", improved["key"], approved_text, approved=True)),
                (f"{cid}:x2", excerpt(cid, "x2", improved["key"], f"Signé {MARKER}, mon adresse…", approved=False)),
            ],
        )
        released = await client.post(f"{base}/v1/consultations/{cid}/results/release", headers=pipeline.admin())
        assert released.status_code == 204

        async def engagements() -> dict[str, bytes] | None:
            files = await files_of(client, base, cid, {})  # public now: no token
            complete = len(csv_rows(files.get("engagements.csv", b""))) == 3
            return files if complete and len(csv_rows(files.get("extraits.csv", b""))) == 1 else None

        files = await poll("the commitments in the public files", engagements, deadline_s=30, interval_s=0.25)
        index = (await client.get(f"{base}/v1/consultations/{cid}/results/files")).json()
        assert {"engagements.csv", "suivi-engagements.csv", "extraits.csv"} <= {f["name"] for f in index["files"]}
        lines = {line["commitment_id"]: line for line in csv_rows(files["engagements.csv"])}
        assert [line["commitment_id"] for line in csv_rows(files["engagements.csv"])] == [
            "ouvrir",
            "ameliorer",
            "ajouter",
        ]
        for name, row in (("ouvrir", opened), ("ameliorer", improved), ("ajouter", added)):
            assert (lines[name]["rank"], lines[name]["score"], lines[name]["respondents"]) == (
                str(row["rank"]), str(row["score"]), str(row["respondents"]),
            )  # fmt: skip
        assert len(csv_rows(files["suivi-engagements.csv"])) == 3
        assert [x["text"] for x in csv_rows(files["extraits.csv"])] == [approved_text]
        assert "Ce que le ministère va faire" in files["rapport.html"].decode()

        assert_valid_package(files, tmp_path)
        assert_nothing_identifies_anyone(files, posted)
        assert "Registre des fanfares" in files["suggestions.csv"].decode()  # a group of 40: its title is shown

        out = await audited(f"{base}/v1/consultations/{cid}/results")
        assert "OK   engagements.csv: input, not recomputed" in out

        page = await client.get(page_url)
        assert page.status_code == 200
        for row in (opened, improved, added):
            assert (row["title"] or row["key"]) in page.text
        assert page.text.count('class="fr-badge fr-badge--info"') == 3
        feed = ET.fromstring((await client.get(feed_url)).content)  # noqa: S314 (the publisher's own output)
        assert len(feed.findall(ATOM + "entry")) == 3

        # One commitment is done: within 30 s the page, the feed and the republished file say so.
        first_step = StatusChange(status=CommitmentStatus.PLANNED, at=utc_now() - timedelta(days=1), by="staff")
        done = StatusChange(status=CommitmentStatus.DONE, at=utc_now(), by="staff", note=DONE_URL)
        await produce(
            bootstrap,
            COMMITMENTS,
            [
                (
                    f"{cid}:ouvrir",
                    commitment(
                        cid, "ouvrir", CommitmentKind.OPEN, opened, history=[first_step, done], done_url=DONE_URL
                    ),
                )
            ],
        )

        async def shown_done() -> bool:
            page = await client.get(page_url)
            feed = ET.fromstring((await client.get(feed_url)).content)  # noqa: S314
            entries = feed.findall(ATOM + "entry")
            files = await files_of(client, base, cid, {})
            line = {x["commitment_id"]: x for x in csv_rows(files["engagements.csv"])}["ouvrir"]
            return (
                "fr-badge--success" in page.text
                and f'href="{DONE_URL}"' in page.text
                and len(entries) == 4
                and "réalisé" in (entries[0].findtext(ATOM + "title") or "")
                and line["status"] == "done"
                and line["done_url"] == DONE_URL
            )

        await poll("the commitment shown done", shown_done, deadline_s=30, interval_s=0.5)
        feed_body = (await client.get(feed_url)).content
        assert datetime.fromisoformat(
            (ET.fromstring(feed_body).findtext(ATOM + "updated") or "").replace("Z", "+00:00")  # noqa: S314
        ) > utc_now() - timedelta(minutes=1)

        # The withdrawn excerpt is nowhere the public can read, nor anything that identifies a respondent.
        republished = await files_of(client, base, cid, {})
        assert_nothing_identifies_anyone(republished, posted)
        for name in ("a-ouvrir.csv", "a-ameliorer.csv", "suggestions.csv", "resultats.json", "reponses.csv"):
            assert republished[name] == files[name], name  # a commitment changed: the rankings did not
        everything = b"".join(republished.values())
        everything += (await client.get(page_url)).content + feed_body
        everything += (await client.get(f"{base}/v1/consultations/{cid}/results")).content
        assert MARKER.encode() not in everything
        for text in posted:
            assert text.encode() not in everything, text
        assert approved_text.encode() in everything

    browser_page = await new_page(browser, javascript=True, bypass_csp=True, viewport={"width": 1280, "height": 900})
    await browser_page.goto(page_url)
    assert "Suivi des engagements" in await browser_page.inner_text("h1")
    assert await axe_violations(browser_page) == []
    await browser_page.context.close()

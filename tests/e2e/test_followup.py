"""Respondents who ask to be told: the opt-in on the confirmation page, one e-mail per commitment and kind to
each of them (and to no one else), redeliveries that send nothing twice, the unsubscribe link, and an address
that appears in clear in no Kafka message and no log line."""

import asyncio
import re
import uuid
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from playwright.async_api import Browser, Page
from pymongo import AsyncMongoClient

from deploy.local.mail import MailSink
from shared.contracts import CommitmentRecorded, utc_now
from shared.topics import COMMITMENTS, FOLLOW_UPS, TOPICS
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import axe_violations, new_page, poll, tick

SETTLE_S = 3.0


async def answer(page: Page, pipeline: Pipeline, cid: str, dataset_id: str) -> None:
    """Answer the form without JavaScript, asking for one dataset to be opened."""
    await page.goto(f"{pipeline.url('ingest')}/consultations/{cid}")
    await page.select_option("#profile", "researcher")
    await tick(page, f"open-{dataset_id}-essential")
    await tick(page, "consent")
    await page.click("#submit")
    await page.wait_for_selector("#confirmation")


async def opt_in(page: Page, address: str) -> None:
    await page.fill("#followup-email", address)
    async with page.expect_navigation() as navigation:
        await page.click("#followup-submit")
    response = await navigation.value
    assert response is not None
    assert response.status == 200
    assert "Merci, nous vous préviendrons" in await page.inner_text("#followup-thanks")


async def axe_of(browser: Browser, pipeline: Pipeline, page: Page) -> list[str]:
    """axe-core's findings on a page seen without JavaScript: axe needs it, so the same HTML is loaded into a
    page of ingest's origin (its styles apply) with JavaScript on."""
    html = await page.content()
    checker = await new_page(browser, javascript=True, bypass_csp=True)
    try:
        await checker.goto(pipeline.url("ingest") + "/")
        await checker.set_content(html, wait_until="load")
        return await axe_violations(checker)
    finally:
        await checker.context.close()


def commitment(cid: str, kid: str, dataset_id: str, status: str, done_url: str | None = None) -> CommitmentRecorded:
    now = utc_now()
    history = [{"status": "planned", "at": now - timedelta(minutes=1), "by": "staff"}]
    if status != "planned":
        history.append({"status": status, "at": now, "by": "staff", "note": done_url})
    return CommitmentRecorded.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "occurred_at": now,
            "consultation_id": cid,
            "commitment_id": kid,
            "kind": "open",
            "dataset_id": dataset_id,
            "title": f"Jeu {dataset_id}",
            "service": "Service des musées de France",
            "target": "2027-T2",
            "status": status,
            "note_fr": "Le ministère ouvrira ce jeu de données.",
            "note_en": "The ministry will open this dataset.",
            "done_url": done_url,
            "history": history,
            "updated_at": history[-1]["at"],
        }
    )


async def record(producer: AIOKafkaProducer, event: CommitmentRecorded) -> None:
    await producer.send_and_wait(COMMITMENTS, event.model_dump_json().encode(), key=event.key.encode())


def kinds_to(mailbox: MailSink, address: str) -> list[str]:
    """The kinds of e-mail an address received, in order, read from their subjects."""
    subjects = [str(m["Subject"]) for m in mailbox.received() if str(m["To"]) == address]
    return ["engagement" if s.startswith("Le ministère s'engage") else "done" for s in subjects]


def unsubscribe_link(message: EmailMessage) -> str:
    body = message.get_content()
    found = re.search(r"https?://\S+/suivi/desabonnement/\S+", body)
    assert found, body
    assert message["List-Unsubscribe"] == f"<{found.group(0)}>"
    return found.group(0)


async def everything_in_kafka(bootstrap: str) -> list[bytes]:
    """Every key and value of every topic of the project, from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(spec.name, p) for spec in TOPICS for p in range(spec.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        end = await consumer.end_offsets(partitions)
        found: list[bytes] = []
        for tp in partitions:
            while await consumer.position(tp) < end[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found += [(r.key or b"") + b" " + (r.value or b"") for r in batch.get(tp, [])]
        return found
    finally:
        await consumer.stop()


async def test_respondents_who_opt_in_are_told_once_per_commitment_and_can_unsubscribe(
    pipeline: Pipeline, browser: Browser, mailbox: MailSink
) -> None:
    cid = pipeline.open_consultation(seconds=600)
    first, second = (d["dataset_id"] for d in pipeline.datasets("not_open")[:2])
    ana, bob = (f"{name}-{uuid.uuid4().hex[:8]}@example.org" for name in ("ana", "bob"))

    # Ana asks for the first dataset and opts in, after a mistyped address; Bob for the second; Carol
    # for the first, without opting in.
    page = await new_page(browser, javascript=False)
    await answer(page, pipeline, cid, first)
    assert "Prévenez-moi" in await page.inner_text("#followup-title")
    assert await axe_of(browser, pipeline, page) == []
    await page.fill("#followup-email", "ana-at-example")
    async with page.expect_navigation() as navigation:
        await page.click("#followup-submit")
    refused = await navigation.value
    assert refused is not None
    assert refused.status == 422
    assert await page.get_attribute("#followup-email", "aria-invalid") == "true"
    assert "adresse électronique valide" in await page.inner_text("#followup-email-error")
    assert await axe_of(browser, pipeline, page) == []
    await opt_in(page, ana)
    assert await axe_of(browser, pipeline, page) == []
    await page.context.close()
    page = await new_page(browser, javascript=False)
    await answer(page, pipeline, cid, second)
    await opt_in(page, bob)
    await page.context.close()
    page = await new_page(browser, javascript=False)
    await answer(page, pipeline, cid, first)
    await page.context.close()

    producer = AIOKafkaProducer(bootstrap_servers=pipeline.infra.kafka_bootstrap, acks="all")
    await producer.start()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(pipeline.infra.mongo_uri)
    followers = mongo["cod_backoffice"]["followers"]
    commitments = mongo["cod_backoffice"]["followup_commitments"]
    try:

        async def told(address: str, kinds: list[str]) -> bool:
            return kinds_to(mailbox, address) == kinds

        async def commitment_seen(kid: str, status: str) -> bool:
            doc = await commitments.find_one({"_id": f"{cid}:{kid}"})
            return bool(doc and doc["commitment"]["status"] == status)

        await record(producer, commitment(cid, "open-first", first, "planned"))
        await poll("Ana told of the commitment", lambda: told(ana, ["engagement"]), deadline_s=30)
        await record(producer, commitment(cid, "open-second", second, "planned"))
        await poll("Bob told of the commitment", lambda: told(bob, ["engagement"]), deadline_s=30)
        await asyncio.sleep(SETTLE_S)
        assert kinds_to(mailbox, ana) == ["engagement"]
        assert kinds_to(mailbox, bob) == ["engagement"]

        # A redelivery sends nothing; the commitment done sends the news once, with where to find it.
        await record(producer, commitment(cid, "open-first", first, "planned"))
        done = commitment(cid, "open-first", first, "done", done_url="https://data.culture.gouv.fr/orgues")
        await record(producer, done)
        await record(producer, done)
        await poll("Ana told it is done", lambda: told(ana, ["engagement", "done"]), deadline_s=30)
        await asyncio.sleep(SETTLE_S)
        assert kinds_to(mailbox, ana) == ["engagement", "done"]
        news = [m for m in mailbox.received() if str(m["To"]) == ana][-1]
        assert "https://data.culture.gouv.fr/orgues" in news.get_content()
        # All Ana followed is done: her follow-up ends and her address is deleted.
        ana_link = unsubscribe_link(news)
        ana_id = ana_link.rsplit("/", 1)[1].split("?")[0]

        async def address_deleted(subscription_id: str) -> bool:
            doc = await followers.find_one({"_id": subscription_id})
            return bool(doc and "email_encrypted" not in doc and doc.get("ended_at"))

        await poll("Ana's address deleted", lambda: address_deleted(ana_id), deadline_s=30)

        # Bob unsubscribes with the link of his e-mail: the page asks first, and a GET changes nothing.
        bob_link = unsubscribe_link(next(m for m in mailbox.received() if str(m["To"]) == bob))
        bob_id = bob_link.rsplit("/", 1)[1].split("?")[0]
        async with httpx.AsyncClient(timeout=10) as client:
            wrong = await client.get(bob_link.replace("jeton=", "jeton=x"))
            assert wrong.status_code == 403
            assert (await client.post(bob_link.split("?")[0], data={"jeton": "forged"})).status_code == 403
        page = await new_page(browser, javascript=False)
        await page.goto(bob_link)
        assert await axe_of(browser, pipeline, page) == []
        await asyncio.sleep(SETTLE_S)
        assert not await address_deleted(bob_id)
        await page.click("#unsubscribe-confirm")
        assert "Vous êtes désabonné" in await page.inner_text("main")
        assert await axe_of(browser, pipeline, page) == []
        await page.context.close()
        await poll("Bob's address deleted", lambda: address_deleted(bob_id), deadline_s=30)

        await record(producer, commitment(cid, "open-second", second, "done", done_url="https://example.org/b"))
        await poll("the second commitment done", lambda: commitment_seen("open-second", "done"), deadline_s=30)
        await asyncio.sleep(SETTLE_S)
        assert kinds_to(mailbox, bob) == ["engagement"]

        async with httpx.AsyncClient(timeout=10) as client:
            metrics = (await client.get(f"{pipeline.url('backoffice')}/metrics")).text
        sent = re.findall(r'backoffice_followup_emails_total\{kind="(\w+)",outcome="sent"\} ([0-9.]+)', metrics)
        assert float(dict(sent)["engagement"]) >= 2

        # The addresses are nowhere in clear: not in Kafka, not in a log line, not in MongoDB.
        messages = await everything_in_kafka(pipeline.infra.kafka_bootstrap)
        assert any(cid.encode() in m for m in messages)
        assert any(ana_id.encode() in m for m in messages)  # the request, encrypted, then its tombstone
        assert FOLLOW_UPS in {spec.name for spec in TOPICS}
        for address in (ana, bob):
            assert not [m for m in messages if address.encode() in m]
            for service in pipeline.services.values():
                assert address not in service.log.read_text(errors="replace"), service.name
            for db in ("cod_backoffice", "cod_ingest"):
                for name in await mongo[db].list_collection_names():
                    async for doc in mongo[db][name].find():
                        assert address not in str(doc), f"{db}.{name}"
    finally:
        await producer.stop()
        await mongo.close()

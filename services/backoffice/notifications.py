"""The follow-up e-mails: the subscribers of the follow-up requests and of the commitments, the sender that
tells each follower once per commitment and kind of e-mail, and its ports (SMTP, tombstones on Kafka)."""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ValidationError

from services.backoffice.followers import FollowUpRepository, MongoFollowUpRepository, StoredFollower
from services.backoffice.followup import (
    Email,
    EmailKind,
    EndReason,
    compose,
    emails_due,
    follow_up_ended,
    notification_id,
)
from services.backoffice.settings import BackofficeSettings
from shared.contracts import CommitmentRecorded, ConsultationDefined, FollowUpRequested, utc_now
from shared.followup import FollowUpKey, InvalidToken, unsubscribe_url
from shared.kafka import (
    BrokerPublisher,
    EventPublisher,
    StateView,
    batch_subscriber,
    dead_letter,
    record_key,
    retry_in_place,
)
from shared.mail import EmailRefused, SmtpMailer
from shared.topics import COMMITMENTS, DEAD_LETTERS, FOLLOW_UPS

__all__ = [
    "EmailRefused",
    "FollowUpMetrics",
    "FollowUpSender",
    "FollowUpService",
    "KafkaTombstones",
    "Mailer",
    "SmtpMailer",
    "build_followup_router",
]

OUTCOMES = ("sent", "refused", "failed", "unreadable")


class FollowUpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.emails = Counter(
            "backoffice_followup_emails_total",
            "Follow-up e-mails, by kind (engagement, done) and outcome (sent, refused, failed, unreadable).",
            ["kind", "outcome"],
            registry=registry,
        )
        for kind in EmailKind:
            for outcome in OUTCOMES:
                self.emails.labels(kind.value, outcome)


class Mailer(Protocol):
    async def send(self, to: str, email: Email, unsubscribe_link: str) -> None: ...


class FollowUpMailer:
    """A follow-up e-mail, with the headers that let a mail client offer the unsubscribe link."""

    def __init__(self, smtp: SmtpMailer) -> None:
        self._smtp = smtp

    async def send(self, to: str, email: Email, unsubscribe_link: str) -> None:
        headers = {"List-Unsubscribe": f"<{unsubscribe_link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        await self._smtp.send(to, email.subject, email.body, headers)


class KafkaTombstones:
    """Ends follow-ups on the compacted topic (null values, acks=all), so the encrypted address leaves Kafka
    too. A producer of its own: the broker's publisher cannot send a null value."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka binds a producer to the running loop: it is made here, not in the wiring.
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True)
        try:
            await producer.start()
        except Exception:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def end(self, subscription_ids: Sequence[str]) -> None:
        if self._producer is None:
            raise RuntimeError("the tombstone producer is not started")
        producer = self._producer
        pending = [await producer.send(FOLLOW_UPS, None, key=s.encode()) for s in subscription_ids]
        await asyncio.gather(*pending)


class FollowUpSender:
    """Tells each follower, once, of the commitments on what they asked for, and ends their follow-up."""

    def __init__(
        self,
        repository: FollowUpRepository,
        mailer: Mailer,
        key: FollowUpKey,
        form_public_url: str,
        consultations: Callable[[str], ConsultationDefined | None],
        end_on_topic: Callable[[Sequence[str]], Awaitable[None]],
        metrics: FollowUpMetrics,
        logger: logging.Logger,
        retention_days: int,
        clock: Callable[[], Any] = utc_now,
    ) -> None:
        self._repository = repository
        self._mailer = mailer
        self._key = key
        self._form_public_url = form_public_url
        self._consultations = consultations
        self._end_on_topic = end_on_topic
        self._metrics = metrics
        self._logger = logger
        self._retention_days = retention_days
        self._clock = clock

    async def requests_received(self, requests: Sequence[FollowUpRequested], ended: Sequence[str]) -> None:
        """Keep new followers and tell them of the commitments already made; forget those who left."""
        now = self._clock()
        await self._repository.add(requests, now)
        await self._repository.end(ended, EndReason.UNSUBSCRIBED, now)
        by_consultation: dict[str, list[StoredFollower]] = defaultdict(list)
        for stored in await self._repository.followers([r.subscription_id for r in requests]):
            by_consultation[stored.follower.consultation_id].append(stored)
        for consultation_id, followers in sorted(by_consultation.items()):
            await self._reconcile(consultation_id, followers, await self._repository.commitments_of(consultation_id))

    async def commitments_recorded(self, commitments: Sequence[CommitmentRecorded]) -> None:
        """Keep the commitments' latest states and tell every follower concerned."""
        await self._repository.record_commitments(commitments)
        for consultation_id in sorted({c.consultation_id for c in commitments}):
            followers = await self._repository.followers_of(consultation_id)
            if followers:
                await self._reconcile(
                    consultation_id, followers, await self._repository.commitments_of(consultation_id)
                )

    async def sweep(self) -> None:
        """End the follow-ups whose retention has passed."""
        for consultation_id in await self._repository.followed_consultations():
            if self._closes_at(consultation_id) is None:
                continue
            followers = await self._repository.followers_of(consultation_id)
            await self._reconcile(consultation_id, followers, await self._repository.commitments_of(consultation_id))

    def _closes_at(self, consultation_id: str) -> Any:
        consultation = self._consultations(consultation_id)
        return consultation.closes_at if consultation else None

    async def _reconcile(
        self, consultation_id: str, followers: Sequence[StoredFollower], commitments: Sequence[CommitmentRecorded]
    ) -> None:
        due = [
            (stored, commitment, kind, notification_id(stored.follower.subscription_id, commitment, kind))
            for stored in followers
            for commitment in commitments
            for kind in emails_due(stored.follower, commitment)
        ]
        claimed = await self._repository.already_claimed([nid for *_, nid in due])
        consultation = self._consultations(consultation_id)
        title = consultation.title if consultation else None
        for stored, commitment, kind, nid in due:
            if nid not in claimed:
                await self._send_once(stored, commitment, kind, nid, title)
        now = self._clock()
        ending: dict[EndReason, list[str]] = defaultdict(list)
        for stored in followers:
            reason = follow_up_ended(
                stored.follower, commitments, self._closes_at(consultation_id), now, self._retention_days
            )
            if reason is not None:
                ending[reason].append(stored.follower.subscription_id)
        for reason, subscription_ids in ending.items():
            # The topic first: a follower ended here but not there would keep its address in Kafka.
            await self._end_on_topic(subscription_ids)
            await self._repository.end(subscription_ids, reason, now)
            self._logger.info(
                "follow-ups ended, addresses deleted",
                extra={"reason": reason.value, "followers": len(subscription_ids)},
            )

    async def _send_once(
        self,
        stored: StoredFollower,
        commitment: CommitmentRecorded,
        kind: EmailKind,
        nid: str,
        consultation_title: str | None,
    ) -> None:
        if not await self._repository.claim(nid, self._clock()):
            return
        log = {"notification": nid, "kind": kind.value}
        try:
            address = self._key.decrypt(stored.email_encrypted)
        except InvalidToken:
            await self._outcome(nid, kind, "unreadable")
            self._logger.error("follow-up address not readable with COD_FOLLOWUP_KEY", extra=log)
            return
        link = unsubscribe_url(self._form_public_url, self._key, stored.follower.subscription_id)
        email = compose(kind, commitment, link, consultation_title)
        try:
            await self._mailer.send(address, email, link)
        except EmailRefused as refused:
            await self._outcome(nid, kind, "refused")
            self._logger.warning("follow-up e-mail refused by the server", extra=log | {"codes": str(refused)})
            return
        except Exception:
            await self._repository.release(nid)
            self._metrics.emails.labels(kind.value, "failed").inc()
            raise
        await self._outcome(nid, kind, "sent")
        self._logger.info("follow-up e-mail sent", extra=log)

    async def _outcome(self, nid: str, kind: EmailKind, outcome: str) -> None:
        self._metrics.emails.labels(kind.value, outcome).inc()
        await self._repository.mark(nid, outcome, self._clock())


def decode_requests(
    records: Sequence[Any],
) -> tuple[list[FollowUpRequested], list[str], list[tuple[str | None, BaseModel]]]:
    """Requests, the subscriptions a tombstone ended, and dead letters for what is neither."""
    requests: list[FollowUpRequested] = []
    ended: list[str] = []
    dead: list[tuple[str | None, BaseModel]] = []
    for record in records:
        key = record_key(record)
        if record.value is None and key:
            ended.append(key)
            continue
        try:
            requests.append(FollowUpRequested.model_validate_json(record.value or b""))
        except ValidationError as error:
            reason = f"not a {FollowUpRequested.__name__}: {error.error_count()} errors"
            dead.append((key, dead_letter("backoffice", record, reason)))
    return requests, ended, dead


def decode_commitments(records: Sequence[Any]) -> tuple[list[CommitmentRecorded], list[tuple[str | None, BaseModel]]]:
    commitments: list[CommitmentRecorded] = []
    dead: list[tuple[str | None, BaseModel]] = []
    for record in records:
        if record.value is None:
            continue  # a commitment removed from the topic: nothing to tell anyone
        try:
            commitments.append(CommitmentRecorded.model_validate_json(record.value))
        except ValidationError as error:
            reason = f"not a {CommitmentRecorded.__name__}: {error}"
            dead.append((record_key(record), dead_letter("backoffice", record, reason)))
    return commitments, dead


def build_followup_router(
    consumer_group: str,
    max_records: int,
    sender: FollowUpSender,
    publisher: EventPublisher,
    on_retry: Callable[[], None],
    stopping: asyncio.Event,
) -> KafkaRouter:
    router = KafkaRouter()
    logger = logging.getLogger("backoffice.followup")

    @batch_subscriber(router, FOLLOW_UPS, f"{consumer_group}-followups", max_records)
    async def follow_requests(records: Any) -> None:
        requests, ended, dead = decode_requests(records)
        await retry_in_place(lambda: sender.requests_received(requests, ended), stopping, logger, on_retry)
        await publisher.publish(DEAD_LETTERS, dead)

    @batch_subscriber(router, COMMITMENTS, f"{consumer_group}-commitments", max_records)
    async def follow_commitments(records: Any) -> None:
        commitments, dead = decode_commitments(records)
        await retry_in_place(lambda: sender.commitments_recorded(commitments), stopping, logger, on_retry)
        await publisher.publish(DEAD_LETTERS, dead)

    return router


class FollowUpService:
    """The follow-up e-mails as the workspace runs them: built from the settings, their subscribers on the
    app's broker, the tombstone producer and the retention sweep started and stopped with the app. Kept
    here so that app.py only plugs it in."""

    def __init__(
        self,
        settings: BackofficeSettings,
        mongo: Any,
        registry: CollectorRegistry,
        consultations: StateView[ConsultationDefined],
        broker: KafkaBroker,
        on_retry: Callable[[], None],
        stopping: asyncio.Event,
    ) -> None:
        self._logger = logging.getLogger("backoffice.followup")
        self._settings = settings
        self._consultations = consultations
        self._stopping = stopping
        self.repository = MongoFollowUpRepository(mongo, settings.mongo_database)
        self._tombstones = KafkaTombstones(settings.kafka_bootstrap)
        mailer = FollowUpMailer(SmtpMailer(settings))
        self.sender = FollowUpSender(
            self.repository,
            mailer,
            settings.followup(),
            settings.form_public_url,
            consultations.get,
            self._tombstones.end,
            FollowUpMetrics(registry),
            self._logger,
            settings.followup_retention_days,
        )
        broker.include_router(
            build_followup_router(
                settings.consumer_group,
                settings.batch_max_records,
                self.sender,
                BrokerPublisher(broker),
                on_retry,
                stopping,
            )
        )
        self._sweeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Before the broker: the subscribers may end follow-ups as soon as they run."""
        await self._tombstones.start()
        self._sweeping = asyncio.create_task(self._sweep_now_and_then(), name="followup-sweep")

    async def stop(self) -> None:
        """After the broker has drained: its last batches may still end follow-ups."""
        if self._sweeping:
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
        await self._tombstones.stop()

    async def _sweep_now_and_then(self) -> None:
        await self._consultations.ready.wait()
        while not self._stopping.is_set():
            try:
                await self.sender.sweep()
            except Exception:
                self._logger.exception("follow-ups past their retention not swept; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.followup_sweep_interval_s)

"""The follow-up e-mails' rules and sender: who is told what, once; matching; when an address is deleted."""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.fernet import Fernet
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.backoffice.followers import StoredFollower
from services.backoffice.followup import (
    Email,
    EmailKind,
    EndReason,
    Follower,
    compose,
    emails_due,
    follow_up_ended,
    follows,
    normalise_title,
    notification_id,
)
from services.backoffice.notifications import EmailRefused, FollowUpMetrics, FollowUpSender
from services.backoffice.settings import BackofficeSettings
from services.ingest.followup import followed_in
from services.ingest.settings import IngestSettings
from shared.contracts import CommitmentRecorded, FollowUpRequested
from shared.followup import DEV_FOLLOWUP_KEY, FollowUpKey, unsubscribe_url

T0 = datetime(2027, 3, 1, tzinfo=UTC)
CLOSE = datetime(2027, 1, 31, tzinfo=UTC)


def commitment(cid: str = "c1", kid: str = "k1", status: str = "planned", **fields: Any) -> CommitmentRecorded:
    fields.setdefault("kind", "open")
    if fields["kind"] == "add":
        fields.setdefault("suggestion_key", "title:registre fanfare")
    else:
        fields.setdefault("dataset_id", "d1")
    history = [{"status": "planned", "at": T0, "by": "staff"}]
    if status != "planned":
        history.append({"status": status, "at": T0 + timedelta(days=1), "by": "staff"})
    return CommitmentRecorded.model_validate(
        {
            "event_id": f"{kid}-{status}",
            "occurred_at": T0,
            "consultation_id": cid,
            "commitment_id": kid,
            "title": "Registre des orgues",
            "service": "DGPA",
            "target": "2027-T2",
            "status": status,
            "note_fr": "Ouverture prévue.",
            "reason": "Plus de budget" if status == "dropped" else None,
            "history": history,
            "updated_at": history[-1]["at"],
            **fields,
        }
    )


def follower(datasets: Sequence[str] = ("d1",), titles: Sequence[str] = (), sid: str = "s1") -> Follower:
    return Follower(sid, "c1", frozenset(datasets), tuple(titles))


def test_a_follower_is_told_of_commitments_on_the_datasets_they_asked_for_only() -> None:
    assert follows(follower(["d1"]), commitment(dataset_id="d1"))
    assert follows(follower(["d1"]), commitment(kind="improve", dataset_id="d1"))
    assert not follows(follower(["d2"]), commitment(dataset_id="d1"))
    assert not follows(follower(["d1"]), commitment(cid="other", dataset_id="d1"))


def test_a_dataset_to_add_matches_a_typed_title_normalised_by_its_title_or_group_key() -> None:
    typed = follower([], ["Le registre des Fanfares !"])
    assert normalise_title("Le registre des Fanfares !") == "registre fanfare"
    assert follows(typed, commitment(kind="add", suggestion_key="title:registre fanfare", title="Autre chose"))
    assert follows(typed, commitment(kind="add", suggestion_key="title:xyz", title="Registre des fanfares"))
    assert not follows(typed, commitment(kind="add", suggestion_key="title:xyz", title="Registre des orgues"))
    # A suggestion the catalogue matched to a dataset the follower asked for.
    assert follows(follower(["d9"]), commitment(kind="add", suggestion_key="dataset:d9", title="X"))


@pytest.mark.parametrize(
    ("status", "due"),
    [
        ("planned", [EmailKind.ENGAGEMENT]),
        ("in_progress", [EmailKind.ENGAGEMENT]),
        ("done", [EmailKind.DONE]),
        ("dropped", []),
    ],
)
def test_the_email_due_follows_the_commitments_status(status: str, due: list[EmailKind]) -> None:
    assert emails_due(follower(), commitment(status=status)) == due
    assert emails_due(follower(["d2"]), commitment(status=status)) == []


def test_the_follow_up_ends_when_everything_followed_is_done_or_dropped() -> None:
    two = follower(["d1", "d2"], ["Registre des fanfares"])
    done_d1 = commitment(kid="a", status="done", dataset_id="d1")
    dropped_d2 = commitment(kid="b", status="dropped", dataset_id="d2")
    added = commitment(kid="c", status="done", kind="add")
    assert follow_up_ended(two, [done_d1, dropped_d2], CLOSE, T0, 365) is None  # the suggestion has none
    assert follow_up_ended(two, [done_d1, dropped_d2, added], CLOSE, T0, 365) is EndReason.COMPLETED
    # One commitment still under way on a followed dataset keeps it going.
    pending = commitment(kid="d", status="in_progress", dataset_id="d1")
    assert follow_up_ended(two, [done_d1, dropped_d2, added, pending], CLOSE, T0, 365) is None


def test_the_follow_up_ends_at_the_latest_after_the_retention() -> None:
    assert follow_up_ended(follower(), [], CLOSE, CLOSE + timedelta(days=364), 365) is None
    assert follow_up_ended(follower(), [], CLOSE, CLOSE + timedelta(days=365), 365) is EndReason.RETENTION
    assert follow_up_ended(follower(), [], None, CLOSE + timedelta(days=999), 365) is None


def test_emails_are_french_then_english_with_the_unsubscribe_link() -> None:
    done = compose(EmailKind.DONE, commitment(status="done", done_url="https://data.example/orgues"), "LINK", "Ma c")
    assert done.subject == "C'est fait : Registre des orgues / Done: Registre des orgues"
    assert done.body.index("C'est fait") < done.body.index("Done:")
    assert done.body.count("https://data.example/orgues") == 2
    assert done.body.count("LINK") == 2
    engagement = compose(EmailKind.ENGAGEMENT, commitment(), "LINK")
    assert "2e trimestre 2027" in engagement.body
    assert "Q2 2027" in engagement.body


def test_unsubscribe_tokens_are_checked_without_a_lookup_and_addresses_round_trip() -> None:
    key = FollowUpKey(Fernet.generate_key().decode())
    token = key.unsubscribe_token("sub-1234567890abcdef")
    assert key.token_is_valid("sub-1234567890abcdef", token)
    assert not key.token_is_valid("sub-1234567890abcdeX", token)
    assert not FollowUpKey(DEV_FOLLOWUP_KEY).token_is_valid("sub-1234567890abcdef", token)
    encrypted = key.encrypt("ana@example.org")
    assert "ana" not in encrypted
    assert key.decrypt(encrypted) == "ana@example.org"
    assert (
        unsubscribe_url("https://x.org/", key, "s1")
        == f"https://x.org/suivi/desabonnement/s1?jeton={key.unsubscribe_token('s1')}"
    )


def test_the_development_followup_key_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "COD_ADMIN_TOKEN": "a" * 32,
        "COD_PSEUDONYM_SECRET": "p",
        "COD_STAFF_BOOTSTRAP": "",
        "COD_INGEST_SLOT": "0",
    }
    for name, value in ({"COD_ENVIRONMENT": "production"} | secrets).items():
        monkeypatch.setenv(name, value)
    for settings in (IngestSettings, BackofficeSettings):
        with pytest.raises(ValidationError, match="COD_FOLLOWUP_KEY"):
            settings()
    monkeypatch.setenv("COD_FOLLOWUP_KEY", "not-a-fernet-key")
    with pytest.raises(ValidationError, match="Fernet"):
        IngestSettings()
    monkeypatch.setenv("COD_FOLLOWUP_KEY", Fernet.generate_key().decode())
    assert IngestSettings().followup_key.get_secret_value() != DEV_FOLLOWUP_KEY


def test_ingest_takes_the_datasets_and_suggestion_titles_of_the_latest_form() -> None:
    form = {
        "open_requests": [{"dataset_id": "d1", "priority": "useful"}],
        "improvement_requests": [{"dataset_id": "d2", "kinds": ["api_access"]}],
        "suggestions": [{"title": "Registre des fanfares"}],
    }
    assert followed_in(form) == (["d1", "d2"], ["Registre des fanfares"])


class FakeRepository:
    def __init__(self) -> None:
        self.followers_by_id: dict[str, dict[str, Any]] = {}
        self.commitments: dict[str, CommitmentRecorded] = {}
        self.notifications: dict[str, str] = {}

    async def ensure_indexes(self) -> None:
        pass

    async def add(self, requests: Sequence[FollowUpRequested], at: datetime) -> None:
        for r in requests:
            self.followers_by_id.setdefault(r.subscription_id, {"request": r})

    async def end(self, subscription_ids: Sequence[str], reason: EndReason, at: datetime) -> None:
        for s in subscription_ids:
            self.followers_by_id.setdefault(s, {}).pop("request", None)
            self.followers_by_id[s].setdefault("ended", reason)

    def _active(self) -> list[StoredFollower]:
        return [
            StoredFollower(
                Follower(r.subscription_id, r.consultation_id, frozenset(r.dataset_ids), tuple(r.suggestion_titles)),
                r.email_encrypted,
            )
            for r in (d.get("request") for d in self.followers_by_id.values())
            if r is not None
        ]

    async def followers(self, subscription_ids: Sequence[str]) -> list[StoredFollower]:
        return [f for f in self._active() if f.follower.subscription_id in subscription_ids]

    async def followers_of(self, consultation_id: str) -> list[StoredFollower]:
        return [f for f in self._active() if f.follower.consultation_id == consultation_id]

    async def followed_consultations(self) -> list[str]:
        return sorted({f.follower.consultation_id for f in self._active()})

    async def record_commitments(self, commitments: Sequence[CommitmentRecorded]) -> None:
        for c in commitments:
            if c.key not in self.commitments or self.commitments[c.key].updated_at <= c.updated_at:
                self.commitments[c.key] = c

    async def commitments_of(self, consultation_id: str) -> list[CommitmentRecorded]:
        return [c for c in self.commitments.values() if c.consultation_id == consultation_id]

    async def already_claimed(self, notification_ids: Sequence[str]) -> set[str]:
        return set(notification_ids) & set(self.notifications)

    async def claim(self, notification_id: str, at: datetime) -> bool:
        if notification_id in self.notifications:
            return False
        self.notifications[notification_id] = "sending"
        return True

    async def mark(self, notification_id: str, outcome: str, at: datetime) -> None:
        self.notifications[notification_id] = outcome

    async def release(self, notification_id: str) -> None:
        if self.notifications.get(notification_id) == "sending":
            del self.notifications[notification_id]


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Email]] = []
        self.failing: Exception | None = None

    async def send(self, to: str, email: Email, unsubscribe_link: str) -> None:
        if self.failing:
            raise self.failing
        self.sent.append((to, email))


class Sender:
    def __init__(self) -> None:
        self.key = FollowUpKey(Fernet.generate_key().decode())
        self.repository = FakeRepository()
        self.mailer = FakeMailer()
        self.tombstoned: list[str] = []
        self.now = T0
        self.consultation: Any = None

        async def tombstone(ids: Sequence[str]) -> None:
            self.tombstoned.extend(ids)

        self.sender = FollowUpSender(
            self.repository,
            self.mailer,
            self.key,
            "https://form.example",
            lambda _: self.consultation,
            tombstone,
            FollowUpMetrics(CollectorRegistry()),
            logging.getLogger("test"),
            365,
            clock=lambda: self.now,
        )

    def request(self, sid: str, email: str, datasets: list[str]) -> FollowUpRequested:
        return FollowUpRequested(
            event_id=sid,
            occurred_at=T0,
            subscription_id=sid,
            consultation_id="c1",
            email_encrypted=self.key.encrypt(email),
            dataset_ids=datasets,
        )

    def subjects(self) -> list[tuple[str, str]]:
        return [(to, e.subject.split(" :")[0]) for to, e in self.mailer.sent]


async def test_each_follower_is_told_once_per_commitment_and_kind_whatever_the_order_and_redeliveries() -> None:
    s = Sender()
    await s.sender.commitments_recorded([commitment(dataset_id="d1")])  # before anyone follows
    await s.sender.requests_received([s.request("s1", "ana@example.org", ["d1"])], [])
    await s.sender.requests_received([s.request("s2", "bob@example.org", ["d2"])], [])
    assert s.subjects() == [("ana@example.org", "Le ministère s'engage")]
    await s.sender.commitments_recorded([commitment(dataset_id="d1")])  # redelivered
    await s.sender.requests_received([s.request("s1", "ana@example.org", ["d1"])], [])  # redelivered
    assert len(s.mailer.sent) == 1
    await s.sender.commitments_recorded([commitment(status="done", dataset_id="d1", done_url="https://d")])
    await s.sender.commitments_recorded([commitment(status="done", dataset_id="d1", done_url="https://d")])
    assert s.subjects() == [("ana@example.org", "Le ministère s'engage"), ("ana@example.org", "C'est fait")]
    # Everything Ana followed is done: her address is deleted, here and on the topic.
    assert s.tombstoned == ["s1"]
    assert "request" not in s.repository.followers_by_id["s1"]
    # A redelivered request does not bring her back.
    await s.sender.requests_received([s.request("s1", "ana@example.org", ["d1"])], [])
    assert await s.repository.followers(["s1"]) == []


async def test_an_unsubscribed_follower_is_told_nothing_more() -> None:
    s = Sender()
    await s.sender.requests_received([s.request("s1", "ana@example.org", ["d1"])], [])
    await s.sender.requests_received([], ["s1"])
    await s.sender.commitments_recorded([commitment(dataset_id="d1")])
    assert s.mailer.sent == []
    assert s.repository.followers_by_id["s1"] == {"ended": EndReason.UNSUBSCRIBED}


async def test_a_failed_send_is_tried_again_a_refused_one_is_not_and_a_claimed_one_never_twice() -> None:
    s = Sender()
    await s.sender.requests_received([s.request("s1", "ana@example.org", ["d1"])], [])
    s.mailer.failing = ConnectionError("SMTP down")
    with pytest.raises(ConnectionError):
        await s.sender.commitments_recorded([commitment(dataset_id="d1")])
    assert s.repository.notifications == {}
    s.mailer.failing = None
    await s.sender.commitments_recorded([commitment(dataset_id="d1")])
    assert len(s.mailer.sent) == 1
    s.mailer.failing = EmailRefused("550")
    await s.sender.commitments_recorded([commitment(kid="k2", dataset_id="d1")])
    nid = notification_id("s1", commitment(kid="k2", dataset_id="d1"), EmailKind.ENGAGEMENT)
    assert s.repository.notifications[nid] == "refused"
    # A crash between send and mark leaves the claim: the e-mail is not sent again (at most once).
    s.mailer.failing = None
    crashed = notification_id("s1", commitment(kid="k3", dataset_id="d1"), EmailKind.ENGAGEMENT)
    s.repository.notifications[crashed] = "sending"
    await s.sender.commitments_recorded([commitment(kid="k3", dataset_id="d1")])
    assert len(s.mailer.sent) == 1


async def test_the_sweep_deletes_addresses_past_the_retention() -> None:
    s = Sender()
    await s.sender.requests_received([s.request("s1", "ana@example.org", ["d1"])], [])

    s.consultation = SimpleNamespace(closes_at=CLOSE, title="C1")
    s.now = CLOSE + timedelta(days=364)
    await s.sender.sweep()
    assert s.tombstoned == []
    s.now = CLOSE + timedelta(days=365)
    await s.sender.sweep()
    assert s.tombstoned == ["s1"]
    assert s.repository.followers_by_id["s1"] == {"ended": EndReason.RETENTION}

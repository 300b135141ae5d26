"""The follow-up e-mails' rules: who is told what about which commitment, once, and when a follower's
address is deleted. Pure: no broker, no store, no SMTP."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.contracts import CommitmentKind, CommitmentRecorded, CommitmentStatus, FollowUpRequested
from shared.contracts.suggestions import normalise_title

__all__ = [
    "Email",
    "EmailKind",
    "EndReason",
    "Follower",
    "compose",
    "emails_due",
    "follow_up_ended",
    "follower_of",
    "follows",
    "normalise_title",
    "notification_id",
]

FINAL = frozenset({CommitmentStatus.DONE, CommitmentStatus.DROPPED})


class EmailKind(StrEnum):
    ENGAGEMENT = "engagement"
    DONE = "done"


class EndReason(StrEnum):
    COMPLETED = "completed"
    RETENTION = "retention"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class Follower:
    """A respondent who asked to be told: what they follow, without their address."""

    subscription_id: str
    consultation_id: str
    dataset_ids: frozenset[str]
    suggestion_titles: tuple[str, ...] = ()

    @property
    def wanted_titles(self) -> frozenset[str]:
        return frozenset(t for t in map(normalise_title, self.suggestion_titles) if t)


def follower_of(request: FollowUpRequested) -> Follower:
    """The follower a request describes."""
    return Follower(
        request.subscription_id,
        request.consultation_id,
        frozenset(request.dataset_ids),
        tuple(request.suggestion_titles),
    )


def _titles_of(commitment: CommitmentRecorded) -> set[str]:
    titles = {normalise_title(commitment.title)}
    kind, _, rest = (commitment.suggestion_key or "").partition(":")
    if kind == "title":
        titles.add(rest.replace("-", " "))
    return titles - {""}


def _datasets_of(commitment: CommitmentRecorded) -> set[str]:
    if commitment.dataset_id is not None:
        return {commitment.dataset_id}
    kind, _, rest = (commitment.suggestion_key or "").partition(":")
    return {rest} if kind == "dataset" else set()


def follows(follower: Follower, commitment: CommitmentRecorded) -> bool:
    """Whether the commitment is on something the follower asked for: a dataset to open or improve by its
    id; a dataset to add when its title or group key matches a title they typed."""
    if commitment.consultation_id != follower.consultation_id:
        return False
    if _datasets_of(commitment) & follower.dataset_ids:
        return True
    return commitment.kind is CommitmentKind.ADD and bool(_titles_of(commitment) & follower.wanted_titles)


def emails_due(follower: Follower, commitment: CommitmentRecorded) -> list[EmailKind]:
    """The e-mail the commitment's current state calls for: the engagement while planned or in progress, the
    news when done (alone, if the commitment was first seen done), nothing when dropped or not followed."""
    if not follows(follower, commitment):
        return []
    if commitment.status is CommitmentStatus.DONE:
        return [EmailKind.DONE]
    if commitment.status is CommitmentStatus.DROPPED:
        return []
    return [EmailKind.ENGAGEMENT]


def notification_id(subscription_id: str, commitment: CommitmentRecorded, kind: EmailKind) -> str:
    """The identity of one e-mail: each (subscription, commitment, kind of e-mail) is sent once."""
    return f"{subscription_id}|{commitment.key}|{kind.value}"


def follow_up_ended(
    follower: Follower,
    commitments: Iterable[CommitmentRecorded],
    closes_at: datetime | None,
    now: datetime,
    retention_days: int,
) -> EndReason | None:
    """Why the follow-up is over, if it is: `retention` days after the close at the latest; before that,
    once every dataset and suggestion followed has a commitment and all those are done or dropped."""
    if closes_at is not None and now >= closes_at + timedelta(days=retention_days):
        return EndReason.RETENTION
    followed = [c for c in commitments if follows(follower, c)]
    if not followed or any(c.status not in FINAL for c in followed):
        return None
    covered_datasets = set().union(*(_datasets_of(c) for c in followed))
    covered_titles = set().union(*(_titles_of(c) for c in followed if c.kind is CommitmentKind.ADD))
    if follower.dataset_ids <= covered_datasets and follower.wanted_titles <= covered_titles:
        return EndReason.COMPLETED
    return None


@dataclass(frozen=True)
class Email:
    subject: str
    body: str


_VERB = {
    CommitmentKind.OPEN: ("ouvrir", "opening", "ouvert", "opened"),
    CommitmentKind.IMPROVE: ("améliorer", "improving", "amélioré", "improved"),
    CommitmentKind.ADD: ("ouvrir", "opening", "ouvert", "opened"),
}


def _target(target: str) -> tuple[str, str]:
    year, _, rest = target.partition("-")
    if rest.startswith("T"):
        quarter = rest[1:]
        return f"{quarter}{'er' if quarter == '1' else 'e'} trimestre {year}", f"Q{quarter} {year}"
    month, _, day = rest.partition("-")
    return f"{day}/{month}/{year}", target


def compose(
    kind: EmailKind, commitment: CommitmentRecorded, unsubscribe_link: str, consultation_title: str | None = None
) -> Email:
    """The plain-text e-mail, French then English, with the unsubscribe link."""
    verb_fr, verb_en, done_fr, done_en = _VERB[commitment.kind]
    target_fr, target_en = _target(commitment.target)
    about_fr = f" « {consultation_title} »" if consultation_title else ""
    about_en = f" “{consultation_title}”" if consultation_title else ""
    title = commitment.title
    if kind is EmailKind.ENGAGEMENT:
        subject = f"Le ministère s'engage : {title} / The ministry commits: {title}"
        news_fr = [
            f"Le ministère de la Culture s'engage à {verb_fr} le jeu de données « {title} ».",
            f"Service chargé : {commitment.service}",
            f"Échéance : {target_fr}",
        ]
        news_en = [
            f"The French Ministry of Culture commits to {verb_en} the dataset “{title}”.",
            f"Service in charge: {commitment.service}",
            f"Target: {target_en}",
        ]
    else:
        subject = f"C'est fait : {title} / Done: {title}"
        news_fr = [f"C'est fait : le jeu de données « {title} » est {done_fr}."]
        news_en = [f"Done: the dataset “{title}” is {done_en}."]
        if commitment.done_url:
            news_fr.append(f"Où le trouver : {commitment.done_url}")
            news_en.append(f"Where to find it: {commitment.done_url}")
    news_fr.append(commitment.note_fr)
    if commitment.note_en:
        news_en.append(commitment.note_en)
    french = [
        "Bonjour,",
        "",
        f"Vous avez demandé à être prévenu des suites de la consultation{about_fr}.",
        "",
        *news_fr,
        "",
        f"Pour ne plus recevoir ces courriels : {unsubscribe_link}",
    ]
    english = [
        "Hello,",
        "",
        f"You asked to be told what comes of the consultation{about_en}.",
        "",
        *news_en,
        "",
        f"To stop receiving these e-mails: {unsubscribe_link}",
    ]
    return Email(subject, "\n".join([*french, "", "-- ", "", *english, ""]))

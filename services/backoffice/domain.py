"""What the workspace knows, as pure functions: the texts a response carries, their search form,
the state of a consultation, sign-in throttling, and the geometry of the charts."""

import hashlib
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from shared.contracts import (
    CommitmentKind,
    CommitmentRecorded,
    CommitmentStatus,
    ConsultationDefined,
    DatasetRecord,
    DatasetStatus,
    ResponseEnriched,
    StatusChange,
)


class TextKind(StrEnum):
    IMPROVEMENT = "improvement"
    SUGGESTION = "suggestion"
    PLATFORM = "platform"


class ConsultationStatus(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"
    RESULTS = "results"


def normalise(text: str) -> str:
    """Lower case, accents removed, blanks folded: what full-text search compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.split())


def order_key(received_at: datetime, response_id: str) -> str:
    """A string that sorts submissions of one respondent as ingest ordered them (latest last)."""
    return f"{received_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z|{response_id}"


def respondent_id(consultation_id: str, respondent_key: str) -> str:
    return f"{consultation_id}:{respondent_key}"


def asks_of(enriched: ResponseEnriched) -> set[str]:
    """What a submission asks for, as stuffing detection compares it: `open:<dataset>`,
    `improve:<dataset>` and `add:<suggestion group>` (priorities and texts aside)."""
    response = enriched.response
    return (
        {f"open:{r.dataset_id}" for r in response.open_requests}
        | {f"improve:{r.dataset_id}" for r in response.improvement_requests}
        | {f"add:{match.group_key}" for match in enriched.suggestions}
    )


def latest_per_respondent(submissions: Iterable[ResponseEnriched]) -> list[ResponseEnriched]:
    """Each respondent's latest submission among these: the one the workspace shows."""
    latest: dict[str, ResponseEnriched] = {}
    for enriched in submissions:
        response = enriched.response
        key = respondent_id(response.consultation_id, response.respondent_key)
        held = latest.get(key)
        if held is None or order_key(held.response.received_at, held.response.response_id) < order_key(
            response.received_at, response.response_id
        ):
            latest[key] = enriched
    return list(latest.values())


def local_day(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).date().isoformat()


def texts_of(enriched: ResponseEnriched, zone: tzinfo) -> list[dict[str, Any]]:
    """The documents of what a respondent wrote in one submission: each improvement that has a comment,
    each suggestion, and the platform feedback. They carry no respondent identifier, only profile and day."""
    response = enriched.response
    if response.withdrawn:
        return []
    common: dict[str, Any] = {
        "consultation_id": response.consultation_id,
        "profile": response.profile.value,
        "day": local_day(response.received_at, zone),
        "received_at": response.received_at,
    }
    items: list[dict[str, Any]] = []
    for request in response.improvement_requests:
        if not request.comment:
            continue
        dataset = enriched.datasets.get(request.dataset_id)
        items.append(
            common
            | {
                "kind": TextKind.IMPROVEMENT.value,
                "dataset_id": request.dataset_id,
                "dataset_title": dataset.title if dataset else request.dataset_id,
                "kinds": [kind.value for kind in request.kinds],
                "comment": request.comment,
                "search": normalise(request.comment),
            }
        )
    for index, suggestion in enumerate(response.suggestions):
        match = enriched.suggestions[index] if index < len(enriched.suggestions) else None
        items.append(
            common
            | {
                "kind": TextKind.SUGGESTION.value,
                "group_key": match.group_key if match else f"title:{normalise(suggestion.title)}",
                "group_title": match.title if match else suggestion.title,
                "dataset_id": match.matched_dataset_id if match else None,
                "title": suggestion.title,
                "description": suggestion.description,
                "holder": suggestion.holder,
                "search": normalise(
                    " ".join(filter(None, (suggestion.title, suggestion.description, suggestion.holder)))
                ),
            }
        )
    platform = response.platform
    if platform is not None and (platform.satisfaction is not None or platform.comment):
        items.append(
            common
            | {
                "kind": TextKind.PLATFORM.value,
                "satisfaction": platform.satisfaction,
                "comment": platform.comment,
                "search": normalise(platform.comment or ""),
            }
        )
    return items


def status_of(consultation: ConsultationDefined, now: datetime, results_emitted: bool) -> ConsultationStatus:
    if results_emitted:
        return ConsultationStatus.RESULTS
    if now < consultation.opens_at:
        return ConsultationStatus.UPCOMING
    if now < consultation.closes_at:
        return ConsultationStatus.OPEN
    return ConsultationStatus.CLOSED


def throttled_until(failures: Sequence[datetime], now: datetime, window: timedelta, limit: int) -> datetime | None:
    """When sign-in may be tried again after these failures, or None if it may be tried now: at most
    `limit` failures within any `window`."""
    recent = sorted(at for at in failures if at > now - window)
    if len(recent) < limit:
        return None
    return recent[-limit] + window


def local_datetime(text: str, zone: tzinfo) -> datetime:
    """A date and time typed in a form (`YYYY-MM-DDTHH:MM`), in the workspace's time zone."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    height: int
    label_width: int = 220
    plot_width: int = 420
    bar_height: int = 22
    gap: int = 8


def bar_chart(series: Sequence[tuple[str, int]]) -> BarChart:
    """Horizontal bars, longest = full width, for an SVG drawn next to the same figures as a table."""
    top = max((value for _, value in series), default=0) or 1
    step = BarChart.bar_height + BarChart.gap
    bars = [
        Bar(label, value, index * step, BarChart.plot_width * value / top)
        for index, (label, value) in enumerate(series)
    ]
    return BarChart(bars, max(len(bars) * step, step))


def daily_series(first_days: dict[str, int], start: date, end: date) -> list[tuple[str, int, int]]:
    """New respondents per day from `start` to `end`, with the running total; days without any included."""
    rows, total, day = [], 0, start
    while day <= end:
        new = first_days.get(day.isoformat(), 0)
        total += new
        rows.append((day.isoformat(), new, total))
        day += timedelta(days=1)
    return rows


# --- commitments and excerpts ------------------------------------------------------------------------

FINAL_STATUSES = frozenset({CommitmentStatus.DONE, CommitmentStatus.DROPPED})
FINAL_STATUS_KEPT = (
    "un engagement tenu ou abandonné ne change plus de statut / a commitment done or dropped keeps its status"
)


class CommitmentRefused(ValueError):
    """A change of commitment that the rules do not allow; the message says why, in French and English."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CommitmentDraft:
    """What staff (or the API) say of a commitment."""

    consultation_id: str
    commitment_id: str
    kind: CommitmentKind
    dataset_id: str | None
    suggestion_key: str | None
    title: str
    service: str
    target: str
    status: CommitmentStatus
    note_fr: str
    note_en: str | None = None
    reason: str | None = None
    done_url: str | None = None


def record_commitment(
    previous: CommitmentRecorded | None, draft: CommitmentDraft, at: datetime, by: str = "staff"
) -> CommitmentRecorded:
    """The commitment's new state: the draft, with a history step when its status changes. What it
    names cannot change once made, and a commitment done or dropped stays so."""
    if previous is not None:
        if (previous.kind, previous.dataset_id, previous.suggestion_key) != (
            draft.kind,
            draft.dataset_id,
            draft.suggestion_key,
        ):
            raise CommitmentRefused("kind", "un engagement garde son objet / a commitment keeps what it is about")
        if previous.status in FINAL_STATUSES and draft.status is not previous.status:
            raise CommitmentRefused("status", FINAL_STATUS_KEPT)
    history = list(previous.history) if previous else []
    if previous is None or previous.status is not draft.status:
        note = draft.reason if draft.status is CommitmentStatus.DROPPED else None
        note = draft.done_url if draft.status is CommitmentStatus.DONE else note
        history.append(StatusChange(status=draft.status, at=at, by=by, note=note))
    key = f"{draft.consultation_id}:{draft.commitment_id}"
    try:
        return CommitmentRecorded(
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"commitment:{key}:{at.isoformat()}:{draft.status}")),
            occurred_at=at,
            consultation_id=draft.consultation_id,
            commitment_id=draft.commitment_id,
            kind=draft.kind,
            dataset_id=draft.dataset_id,
            suggestion_key=draft.suggestion_key,
            title=draft.title,
            service=draft.service,
            target=draft.target,
            status=draft.status,
            note_fr=draft.note_fr,
            note_en=draft.note_en or None,
            reason=draft.reason or None,
            done_url=draft.done_url or None,
            history=history,
            updated_at=at,
        )
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "form"
        raise CommitmentRefused(field, str(first["msg"]).removeprefix("Value error, ")) from None


def opened_by_the_catalogue(
    commitments: Iterable[CommitmentRecorded], dataset: DatasetRecord, at: datetime
) -> list[CommitmentRecorded]:
    """Commitments to open this dataset that its opening in the catalogue fulfils: done, with the link to
    the open dataset, with no staff action."""
    if dataset.status is not DatasetStatus.OPEN:
        return []
    link = _opened_link(dataset)
    done = []
    for commitment in commitments:
        if (
            commitment.kind is CommitmentKind.OPEN
            and commitment.dataset_id == dataset.dataset_id
            and commitment.status not in FINAL_STATUSES
        ):
            draft = CommitmentDraft(
                **{f: getattr(commitment, f) for f in CommitmentDraft.__dataclass_fields__}
                | {"status": CommitmentStatus.DONE, "done_url": link}
            )
            done.append(record_commitment(commitment, draft, max(at, commitment.updated_at), by="catalogue"))
    return done


def _opened_link(dataset: DatasetRecord) -> str | None:
    return (dataset.opened_as.url if dataset.opened_as else None) or dataset.url


def excerpt_id(text_id: str) -> str:
    """A stable public id for an excerpt that says nothing of the respondent it comes from."""
    return hashlib.sha256(text_id.encode()).hexdigest()[:16]

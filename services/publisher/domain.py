"""The publisher's rules: when a consultation is due, when it is fully scored, what the results are."""

import calendar
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.contracts import ConsultationDefined

RESULTS_NAMESPACE = uuid.UUID("6f1c3a52-5d0e-4b8e-9a55-1f0c0de0da7a")

Offsets = Mapping[tuple[str, int], int]


def is_due(consultation: ConsultationDefined, now: datetime, settle: timedelta) -> bool:
    """Due once closed and past the longest time an accepted response may take to reach Kafka."""
    return now >= consultation.closes_at + settle


def results_event_id(consultation_id: str) -> str:
    """The one id the results of a consultation can have, so a second emission is recognisable."""
    return str(uuid.uuid5(RESULTS_NAMESPACE, f"results:{consultation_id}"))


def caught_up(end: Offsets, committed: Offsets) -> bool:
    """Whether a consumer group has committed at least up to `end` on every partition."""
    return all(committed.get(partition, 0) >= offset for partition, offset in end.items() if offset > 0)


def one_month_after(instant: datetime) -> datetime:
    """The same day and time a calendar month later (the last day of that month if it is shorter)."""
    year, month = (instant.year + 1, 1) if instant.month == 12 else (instant.year, instant.month + 1)
    return instant.replace(year=year, month=month, day=min(instant.day, calendar.monthrange(year, month)[1]))


def publication_at(closes_at: datetime, delay_days: int | None, released_at: datetime | None) -> datetime:
    """When results become public: a month after the close by default (the ministry's commitment),
    or after a configured number of days, or earlier when an administrator releases them."""
    embargo = one_month_after(closes_at) if delay_days is None else closes_at + timedelta(days=delay_days)
    return min(embargo, released_at) if released_at is not None else embargo

"""The publisher's rules: when a consultation is due, when it is fully scored, what the results are."""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.contracts import ConsultationDefined, RankingKind, RankingPage, ResultsPublished

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


def build_results(
    consultation: ConsultationDefined, pages: Mapping[RankingKind, RankingPage], frozen_at: datetime
) -> ResultsPublished:
    """The frozen results of a consultation from its complete rankings."""
    some_page = pages[RankingKind.OPEN]
    return ResultsPublished(
        event_id=results_event_id(consultation.consultation_id),
        occurred_at=frozen_at,
        consultation_id=consultation.consultation_id,
        title=consultation.title,
        opens_at=consultation.opens_at,
        closes_at=consultation.closes_at,
        frozen_at=frozen_at,
        respondents=some_page.respondents,
        method=some_page.method,
        open=pages[RankingKind.OPEN].items,
        improve=pages[RankingKind.IMPROVE].items,
        suggestions=pages[RankingKind.SUGGESTIONS].items,
    )

from datetime import UTC, datetime, timedelta

from services.publisher.domain import caught_up, is_due, results_event_id
from shared.contracts import ConsultationDefined

CLOSES = datetime(2027, 1, 31, tzinfo=UTC)
CONSULTATION = ConsultationDefined(
    event_id="e",
    occurred_at=CLOSES,
    consultation_id="c1",
    title="t",
    opens_at=CLOSES - timedelta(days=60),
    closes_at=CLOSES,
)


def test_a_consultation_is_due_once_closed_and_settled() -> None:
    settle = timedelta(seconds=6)
    assert not is_due(CONSULTATION, CLOSES, settle)
    assert not is_due(CONSULTATION, CLOSES + timedelta(seconds=5), settle)
    assert is_due(CONSULTATION, CLOSES + settle, settle)


def test_caught_up_needs_every_non_empty_partition_committed() -> None:
    end = {("t", 0): 10, ("t", 1): 0, ("t", 2): 4}
    assert caught_up(end, {("t", 0): 10, ("t", 2): 5})
    assert not caught_up(end, {("t", 0): 10})
    assert not caught_up(end, {("t", 0): 9, ("t", 2): 4})


def test_results_have_one_id_per_consultation() -> None:
    assert results_event_id("c1") == results_event_id("c1") != results_event_id("c2")


def test_results_are_public_a_calendar_month_after_the_close_unless_configured_or_released() -> None:
    from services.publisher.domain import one_month_after, publication_at

    assert one_month_after(CLOSES) == datetime(2027, 2, 28, tzinfo=UTC)
    assert one_month_after(datetime(2026, 12, 15, 18, tzinfo=UTC)) == datetime(2027, 1, 15, 18, tzinfo=UTC)
    assert publication_at(CLOSES, None, None) == datetime(2027, 2, 28, tzinfo=UTC)
    assert publication_at(CLOSES, 7, None) == CLOSES + timedelta(days=7)
    released = CLOSES + timedelta(days=2)
    assert publication_at(CLOSES, None, released) == released
    assert publication_at(CLOSES, 1, released) == CLOSES + timedelta(days=1)

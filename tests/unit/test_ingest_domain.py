from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.ingest.domain import (
    Window,
    accept,
    respondent_key,
    respondent_token,
    response_id_for,
    window_at,
)
from shared.contracts import ConsultationDefined, ResponseForm

OPENS = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CLOSES = datetime(2027, 1, 31, 23, 59, tzinfo=UTC)
SECRET = b"k"
CONSULTATION = ConsultationDefined(
    event_id="e", occurred_at=OPENS, consultation_id="c1", title="t", opens_at=OPENS, closes_at=CLOSES
)
MS = timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("instant", "window"),
    [
        (OPENS - MS, Window.NOT_YET_OPEN),
        (OPENS, Window.OPEN),
        (CLOSES - MS, Window.OPEN),
        (CLOSES, Window.CLOSED),
        (CLOSES + MS, Window.CLOSED),
    ],
)
def test_the_window_includes_its_opening_and_excludes_its_closing_instant(
    instant: datetime, window: Window
) -> None:
    assert window_at(CONSULTATION, instant) is window


def form(**fields: object) -> ResponseForm:
    body = {
        "respondent": {"profile": "journalist"},
        "open_requests": [{"dataset_id": "d1", "priority": "useful"}],
    }
    return ResponseForm.model_validate(body | fields)


def test_without_a_token_a_retry_keeps_the_same_respondent() -> None:
    first, token1 = accept(form(), "c1", "rid-1", OPENS, SECRET)
    retry, token2 = accept(form(), "c1", "rid-1", OPENS + MS, SECRET)
    other, token3 = accept(form(), "c1", "rid-2", OPENS, SECRET)
    assert token1 == token2 != token3
    assert first.respondent_key == retry.respondent_key != other.respondent_key


def test_a_token_makes_submissions_one_respondent_and_never_travels_in_clear() -> None:
    token = "abcdefghijklmnop1234"
    one, returned = accept(
        form(respondent={"profile": "journalist", "token": token}), "c1", "r1", OPENS, SECRET
    )
    two, _ = accept(form(respondent={"profile": "journalist", "token": token}), "c1", "r2", OPENS, SECRET)
    assert returned == token
    assert one.respondent_key == two.respondent_key == respondent_key(SECRET, "c1", token)
    assert token not in one.model_dump_json()


def test_idempotency_keys_map_to_stable_response_ids() -> None:
    assert response_id_for("key-1", "random") == response_id_for("key-1", "other")
    assert response_id_for(None, "random") == "random"
    assert respondent_token(SECRET, "c1", "r") != respondent_token(SECRET, "c2", "r")


@pytest.mark.parametrize(
    "fields",
    [
        {"open_requests": []},
        {"open_requests": [{"dataset_id": "d1", "priority": "useful"}] * 2},
        {"improvement_requests": [{"dataset_id": "d1", "kinds": ["licence"]}]},
        {"improvement_requests": [{"dataset_id": "o1", "kinds": []}]},
        {"improvement_requests": [{"dataset_id": "o1", "kinds": ["licence", "licence"]}]},
        {"suggestions": [{"title": "x" * 201}]},
        {"open_requests": [{"dataset_id": f"d{i}", "priority": "useful"} for i in range(51)]},
        {"respondent": {"profile": "astronaut"}},
        {"unexpected": True},
    ],
)
def test_invalid_forms_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        form(**fields)

import pytest
from pydantic import ValidationError

from services.ingest.webform import field_id_for, parse_web_form, view_of
from shared.contracts import PRIVACY_NOTICE, ResponseForm


def test_a_filled_form_becomes_the_api_body_and_back() -> None:
    fields = {
        "profile": ["journalist"],
        "departement": ["33"],
        "open-census-a": ["essential"],
        "open-census-b": [""],
        "improve-0-dataset": [""],
        "improve-1-dataset": ["open-x"],
        "improve-1-kinds": ["api_access", "licence"],
        "improve-1-comment": ["  JSON please "],
        "suggestion-0-title": ["Registre des fanfares"],
        "suggestion-0-holder": ["DRAC"],
        "satisfaction": ["4"],
        "consent": ["yes"],
        "privacy_notice": [PRIVACY_NOTICE],
        "response_id": ["abcdef0123456789"],
    }
    parsed = parse_web_form(fields, improve_slots=3, suggestion_slots=2)
    form = ResponseForm.model_validate(parsed.body)
    assert [(r.dataset_id, r.priority.value) for r in form.open_requests] == [("census-a", "essential")]
    assert form.improvement_requests[0].dataset_id == "open-x"
    assert form.improvement_requests[0].comment == "JSON please"
    assert form.suggestions[0].holder == "DRAC"
    assert form.platform is not None
    assert form.platform.satisfaction == 4
    # An error on the first improvement points at the form's second row, where it was typed.
    assert field_id_for("/improvement_requests/0/kinds/1", parsed.field_ids) == "improve-1-kind-0"
    assert field_id_for("/open_requests/0/dataset_id", parsed.field_ids) == "open-census-a-essential"
    view = view_of(parsed.body, improve_slots=3, suggestion_slots=2)
    assert view["open"] == {"census-a": "essential"}
    assert view["improve"][0]["kinds"] == ["api_access", "licence"]
    assert len(view["improve"]) == 3
    assert view["satisfaction"] == "4"


def test_an_unticked_consent_is_a_missing_field_on_the_consent_box() -> None:
    parsed = parse_web_form({"profile": ["student"], "open-x": ["useful"]}, 1, 1)
    assert "consent" not in parsed.body
    assert field_id_for("/consent", parsed.field_ids) == "consent"


def test_a_satisfaction_that_is_not_a_plain_digit_is_invalid_not_a_crash() -> None:
    for typed in ("²", "٣", "4.5", "six"):
        fields = {"profile": ["student"], "satisfaction": [typed], "consent": ["yes"]}
        parsed = parse_web_form(fields, improve_slots=1, suggestion_slots=1)
        with pytest.raises(ValidationError) as refused:
            ResponseForm.model_validate(parsed.body)
        assert any(error["loc"][:2] == ("platform", "satisfaction") for error in refused.value.errors())

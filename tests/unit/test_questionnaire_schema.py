"""The published JSON Schema of a response states the cross-field rules it can, so that a body it
accepts is one the service accepts: at least one dataset or platform feedback, a département in its
région. Each dataset once (a rule on a field of the items) stays the service's alone."""

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from services.ingest.api import ConsultationForm
from shared.contracts import ResponseForm

CONSENT = {"accepted": True, "notice": "2026-12"}
SCHEMA = ResponseForm.model_json_schema()


def body(respondent: dict[str, Any] | None = None, **parts: Any) -> dict[str, Any]:
    return {"respondent": {"profile": "researcher", **(respondent or {})}, "consent": CONSENT, **parts}


def schema_accepts(candidate: dict[str, Any], schema: dict[str, Any] = SCHEMA) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(candidate))


def model_accepts(candidate: dict[str, Any], model: type[BaseModel] = ResponseForm) -> bool:
    try:
        model.model_validate(candidate)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        (body(), False),
        (body(open_requests=[], improvement_requests=[], suggestions=[], platform=None), False),
        (body(open_requests=[{"dataset_id": "d1", "priority": "useful"}]), True),
        (body(improvement_requests=[{"dataset_id": "d1", "kinds": ["licence"]}]), True),
        (body(suggestions=[{"title": "Fréquentation"}]), True),
        (body(platform={}), True),
        (body(platform={"satisfaction": 4}, open_requests=[]), True),
        (body({"departement": "75", "region": "11"}, platform={}), True),
        (body({"departement": "2A"}, platform={}), True),
        (body({"region": "84", "departement": None}, platform={}), True),
        (body({"departement": "75", "region": "84"}, platform={}), False),
        (body({"departement": "00"}, platform={}), False),
        (body({"region": "99"}, platform={}), False),
        (body(improvement_requests=[{"dataset_id": "d1", "kinds": ["licence", "licence"]}]), False),
        (body(suggestions=[{"title": "  "}]), False),
    ],
)
def test_the_schema_and_the_service_agree(candidate: dict[str, Any], valid: bool) -> None:
    assert (schema_accepts(candidate), model_accepts(candidate)) == (valid, valid)


def test_a_dataset_named_twice_passes_the_schema_and_the_service_refuses_it_in_french_first() -> None:
    twice = body(open_requests=[{"dataset_id": "d1", "priority": "useful"}] * 2)
    assert schema_accepts(twice)
    with pytest.raises(ValidationError, match="ne peut être demandé qu'une fois / a dataset may be asked"):
        ResponseForm.model_validate(twice)


WINDOW = {"opens_at": "2026-12-01T09:00:00+01:00", "closes_at": "2027-01-31T18:00:00+01:00"}


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        ({"title": "Données culturelles", **WINDOW}, True),
        ({"title": "Données culturelles", **WINDOW, "public_rankings": True}, True),
        ({"title": "   ", **WINDOW}, False),
        ({"title": "Données culturelles", **WINDOW, "opens_at": 0}, False),  # not read as a Unix time
        ({"title": "Données culturelles", **WINDOW, "public_rankings": 0}, False),
        ({"title": "Données culturelles", **WINDOW, "public_rankings": "yes"}, False),
    ],
)
def test_the_consultation_schema_and_the_service_agree(candidate: dict[str, Any], valid: bool) -> None:
    schema = ConsultationForm.model_json_schema()
    assert (schema_accepts(candidate, schema), model_accepts(candidate, ConsultationForm)) == (valid, valid)

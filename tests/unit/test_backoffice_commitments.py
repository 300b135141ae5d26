"""Commitments as the workspace records them: a public history, what cannot change, and the catalogue
fulfilling a commitment to open a dataset."""

from dataclasses import replace
from datetime import timedelta

import jsonschema
import pytest
from pydantic import ValidationError

from services.backoffice.commitment_pages import CommitmentBody, draft_of
from services.backoffice.domain import (
    CommitmentDraft,
    CommitmentRefused,
    excerpt_id,
    opened_by_the_catalogue,
    record_commitment,
)
from shared.contracts import CommitmentKind, CommitmentStatus, DatasetRecord, DatasetStatus
from tests.backoffice_builders import T0

DRAFT = CommitmentDraft(
    consultation_id="c1",
    commitment_id="ouvrir-orgues",
    kind=CommitmentKind.OPEN,
    dataset_id="census-orgues",
    suggestion_key=None,
    title="Inventaire des orgues",
    service="DGPA",
    target="2027-T2",
    status=CommitmentStatus.PLANNED,
    note_fr="Ouverture au deuxième trimestre.",
)


def test_a_status_change_adds_a_step_and_an_edit_does_not() -> None:
    made = record_commitment(None, DRAFT, T0)
    assert [(s.status, s.at) for s in made.history] == [(CommitmentStatus.PLANNED, T0)]
    edited = record_commitment(made, replace(DRAFT, note_fr="Ouverture en juin."), T0 + timedelta(days=1))
    assert len(edited.history) == 1
    assert edited.note_fr == "Ouverture en juin."
    started = record_commitment(edited, replace(DRAFT, status=CommitmentStatus.IN_PROGRESS), T0 + timedelta(days=2))
    assert [s.status for s in started.history] == [CommitmentStatus.PLANNED, CommitmentStatus.IN_PROGRESS]
    assert started.key == "c1:ouvrir-orgues"
    assert started.event_id != edited.event_id


def test_what_a_commitment_is_about_and_a_final_status_cannot_change() -> None:
    made = record_commitment(None, DRAFT, T0)
    with pytest.raises(CommitmentRefused) as refused:
        record_commitment(made, replace(DRAFT, dataset_id="census-autre"), T0)
    assert refused.value.field == "kind"
    dropped = record_commitment(
        made, replace(DRAFT, status=CommitmentStatus.DROPPED, reason="Données sensibles."), T0 + timedelta(days=1)
    )
    assert dropped.history[-1].note == "Données sensibles."
    with pytest.raises(CommitmentRefused) as kept:
        record_commitment(dropped, replace(DRAFT, status=CommitmentStatus.IN_PROGRESS), T0 + timedelta(days=2))
    assert kept.value.field == "status"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": "bientôt"}, "target"),
        ({"status": CommitmentStatus.DROPPED}, "reason"),
        ({"kind": CommitmentKind.ADD}, "kind"),
        ({"commitment_id": "Pas Un Id"}, "commitment_id"),
    ],
)
def test_a_commitment_the_contract_refuses_is_explained(change: dict[str, object], field: str) -> None:
    with pytest.raises(CommitmentRefused) as refused:
        record_commitment(None, replace(DRAFT, **change), T0)  # type: ignore[arg-type]
    assert refused.value.field in (field, "form")


def dataset(status: DatasetStatus, url: str | None = "https://www.data.gouv.fr/datasets/orgues") -> DatasetRecord:
    return DatasetRecord(dataset_id="census-orgues", title="Orgues", status=status, source="census", url=url)


def test_the_catalogue_opening_the_dataset_fulfils_the_commitment_to_open_it() -> None:
    made = record_commitment(None, DRAFT, T0)
    improve = record_commitment(None, replace(DRAFT, commitment_id="ameliorer", kind=CommitmentKind.IMPROVE), T0)
    assert opened_by_the_catalogue([made, improve], dataset(DatasetStatus.NOT_OPEN), T0) == []
    opened_at = T0 + timedelta(days=30)
    [done] = opened_by_the_catalogue([made, improve], dataset(DatasetStatus.OPEN), opened_at)
    assert (done.commitment_id, done.status, done.done_url) == (
        "ouvrir-orgues",
        CommitmentStatus.DONE,
        "https://www.data.gouv.fr/datasets/orgues",
    )
    assert (done.history[-1].by, done.history[-1].at) == ("catalogue", opened_at)
    assert opened_by_the_catalogue([done], dataset(DatasetStatus.OPEN), opened_at) == []  # already done
    # Two replicas seeing the same opening record the same event.
    assert opened_by_the_catalogue([made], dataset(DatasetStatus.OPEN), opened_at)[0].event_id == done.event_id


def test_an_excerpt_id_says_nothing_of_its_respondent() -> None:
    assert excerpt_id("c1:secret-key|order|0") == excerpt_id("c1:secret-key|order|0")
    assert "secret" not in excerpt_id("c1:secret-key|order|0")
    assert len(excerpt_id("x")) == 16


BODY = {"kind": "open", "dataset_id": "d1", "service": "Musées", "target": "2027-T2", "note": "Ouvert en 2027."}


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({}, True),
        ({"target": " 2027-06-30 "}, True),
        ({"target": "2027-T5"}, False),
        ({"note": "   "}, False),
        ({"dataset_id": None}, False),
        ({"dataset_id": "d1", "suggestion_key": "title:musées"}, False),
        ({"kind": "add", "dataset_id": None, "suggestion_key": "title:musées"}, True),
        ({"kind": "add", "dataset_id": None, "suggestion_key": "title:musées", "service": " "}, False),
        ({"kind": "add", "dataset_id": "", "suggestion_key": " "}, False),
        ({"status": "dropped"}, False),
        ({"status": "dropped", "reason": "Données détruites."}, True),
    ],
)
def test_the_commitment_schema_states_the_rules_the_workspace_applies(changes: dict[str, object], valid: bool) -> None:
    body = {**BODY, **changes}
    schema_valid = jsonschema.Draft202012Validator(CommitmentBody.model_json_schema()).is_valid(body)
    try:
        draft_of("c1", CommitmentBody.model_validate(body).model_dump() | {"note_fr": body["note"]})
        service_valid = True
    except (CommitmentRefused, ValidationError):
        service_valid = False
    assert (schema_valid, service_valid) == (valid, valid)

"""Ingest's submission use case, through `Submissions`, through the web form's HTTP routes and through the
JSON API (responses, withdrawals, consultations defined and closed), with in-memory fakes of Kafka, the
respondent store, the e-mail identities and the mailer."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.ingest.api import IngestApi
from services.ingest.handlers import Definitions, IngestMetrics, Refused, Submissions
from services.ingest.outbox import Unavailable
from services.ingest.settings import IngestSettings
from services.ingest.web import web_router
from services.scoring.handlers import ScoringMetrics, store_batch
from shared.catalogue_view import CatalogueView
from shared.contracts import (
    ConsultationDefined,
    DatasetCatalogued,
    DatasetRecord,
    DatasetStatus,
    DatasetSummary,
    ResponseEnriched,
    ResponseSubmitted,
)
from shared.http import install_problem_handlers
from shared.kafka import StateView
from shared.topics import CONSULTATIONS, RESPONSES_SUBMITTED
from tests.service.builders import form
from tests.service.fakes import (
    Clock,
    FakeMailer,
    FakeProduce,
    InMemoryEmailIdentity,
    InMemoryRespondentStore,
    InMemoryScoringRepository,
)

OPENS = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CLOSES = datetime(2027, 1, 31, 23, 59, tzinfo=UTC)
DURING = OPENS + timedelta(days=3)
SECRET = b"service-test-secret"
CONSULTATION = ConsultationDefined(
    event_id="e", occurred_at=OPENS, consultation_id="c1", title="Consultation", opens_at=OPENS, closes_at=CLOSES
)
STATUSES = {"d-closed": DatasetStatus.NOT_OPEN, "d-open": DatasetStatus.OPEN}


class Ingest:
    """`Submissions` wired to fakes, as `create_app` wires it to Kafka and MongoDB."""

    def __init__(self, now: datetime = DURING, deadline_s: float = 5.0) -> None:
        self.clock = Clock(now)
        # What another replica's early close brings in when this one catches up with the topic.
        self.closes_elsewhere: ConsultationDefined | None = None
        self.produce = FakeProduce()
        self.store = InMemoryRespondentStore()
        self.identity = InMemoryEmailIdentity()
        self.mailer = FakeMailer()
        self.registry = CollectorRegistry()
        self.retired: set[str] = set()
        self.consultations = StateView("unused:9092", CONSULTATIONS, ConsultationDefined, logging.getLogger("test"))
        self.consultations.put("c1", CONSULTATION)
        self.submissions = Submissions(
            SECRET,
            self.consultations.get,
            lambda d: None if d in self.retired else STATUSES.get(d),
            self.produce,
            self.store,
            IngestMetrics(self.registry),
            logging.getLogger("test.ingest"),
            self.identity,
            self.mailer,
            lambda cid, pending_id, signature: (
                f"https://example.test/{cid}/confirmation/{pending_id}?jeton={signature}"
            ),
            clock=self.clock,
            deadline_s=deadline_s,
            consultations_synced=self.catch_up,
        )

    async def catch_up(self) -> None:
        if self.closes_elsewhere is not None:
            self.consultations.put("c1", self.closes_elsewhere)

    def outcome(self, name: str) -> float:
        return self.registry.get_sample_value("ingest_responses_total", {"outcome": name}) or 0.0


async def test_an_accepted_response_is_in_kafka_once_with_a_token_and_remembered_for_replay() -> None:
    ingest = Ingest()
    receipt = await ingest.submissions.submit("c1", form(), "key-1")
    [(topic, key, event)] = ingest.produce.committed
    assert topic == RESPONSES_SUBMITTED
    assert isinstance(event, ResponseSubmitted)
    assert (event.response_id, event.received_at, event.consultation_id) == (receipt.response_id, DURING, "c1")
    assert key.startswith("c1")
    assert receipt.respondent_token
    assert receipt.respondent_token not in event.model_dump_json()
    assert not receipt.replayed
    assert ingest.store.answers[("c1", event.respondent_key)].keys() == {receipt.response_id}
    assert ingest.outcome("accepted") == 1


@pytest.mark.parametrize(
    ("now", "window"),
    [(OPENS - timedelta(milliseconds=1), "not_yet_open"), (CLOSES, "closed"), (CLOSES + timedelta(days=1), "closed")],
)
async def test_outside_the_window_nothing_reaches_kafka(now: datetime, window: str) -> None:
    ingest = Ingest(now)
    with pytest.raises(Refused) as refused:
        await ingest.submissions.submit("c1", form(), None)
    assert refused.value.status == 409
    assert refused.value.extensions["window"] == window
    assert ingest.produce.committed == []
    assert ingest.outcome(window) == 1


async def test_the_first_and_last_instants_of_the_window_are_open() -> None:
    for now in (OPENS, CLOSES - timedelta(milliseconds=1)):
        ingest = Ingest(now)
        await ingest.submissions.submit("c1", form(), None)
        assert len(ingest.produce.committed) == 1


async def test_an_unknown_consultation_is_not_found() -> None:
    ingest = Ingest()
    with pytest.raises(Refused) as refused:
        await ingest.submissions.submit("nope", form(), None)
    assert refused.value.status == 404
    assert ingest.produce.committed == []


async def test_a_retry_with_the_same_key_is_answered_as_the_first_time_and_produced_once() -> None:
    ingest = Ingest()
    first = await ingest.submissions.submit("c1", form(), "key-1")
    ingest.clock.now = DURING + timedelta(seconds=30)
    retry = await ingest.submissions.submit("c1", form(), "key-1")
    assert retry.replayed
    assert (retry.response_id, retry.respondent_token, retry.received_at) == (
        first.response_id,
        first.respondent_token,
        first.received_at,
    )
    assert len(ingest.produce.committed) == 1
    assert (ingest.outcome("accepted"), ingest.outcome("replayed")) == (1, 1)


async def test_a_response_id_reused_for_another_body_is_refused() -> None:
    ingest = Ingest()
    await ingest.submissions.submit("c1", form(response_id="resp-0001"), None)
    other = form(response_id="resp-0001", open_requests=[{"dataset_id": "d-closed", "priority": "useful"}])
    with pytest.raises(Refused) as refused:
        await ingest.submissions.submit("c1", other, None)
    assert refused.value.status == 422
    assert [e.pointer for e in refused.value.errors] == ["/response_id"]
    assert len(ingest.produce.committed) == 1


async def test_datasets_unknown_retired_or_in_the_wrong_list_are_refused_field_by_field() -> None:
    ingest = Ingest()
    ingest.retired.add("d-closed")
    bad = form(
        open_requests=[
            {"dataset_id": "d-closed", "priority": "essential"},
            {"dataset_id": "d-open", "priority": "useful"},
            {"dataset_id": "d-unknown", "priority": "useful"},
        ]
    )
    with pytest.raises(Refused) as refused:
        await ingest.submissions.submit("c1", bad, None)
    assert refused.value.status == 422
    assert [e.pointer for e in refused.value.errors] == [f"/open_requests/{i}/dataset_id" for i in range(3)]
    assert ingest.produce.committed == []
    assert ingest.outcome("invalid") == 1


async def test_a_token_ingest_did_not_issue_is_refused() -> None:
    ingest = Ingest()
    forged = form(respondent={"profile": "journalist", "token": "A" * 43})
    with pytest.raises(Refused) as refused:
        await ingest.submissions.submit("c1", forged, None)
    assert [e.pointer for e in refused.value.errors] == ["/respondent/token"]
    assert ingest.produce.committed == []


async def test_an_amendment_with_the_token_is_the_same_respondent() -> None:
    ingest = Ingest()
    first = await ingest.submissions.submit("c1", form(), None)
    assert first.respondent_token
    amended = form(
        respondent={"profile": "journalist", "token": first.respondent_token},
        open_requests=[{"dataset_id": "d-closed", "priority": "useful"}],
    )
    await ingest.submissions.submit("c1", amended, None)
    one, two = ingest.produce.events()
    assert one.respondent_key == two.respondent_key
    assert one.response_id != two.response_id


async def test_when_kafka_does_not_acknowledge_nothing_is_remembered_and_a_retry_is_accepted() -> None:
    ingest = Ingest()
    ingest.produce.fail = True
    with pytest.raises(Unavailable):
        await ingest.submissions.submit("c1", form(), "key-1")
    assert ingest.store.answers == {}
    assert ingest.outcome("kafka_unavailable") == 1
    ingest.produce.fail = False
    receipt = await ingest.submissions.submit("c1", form(), "key-1")
    assert not receipt.replayed
    assert len(ingest.produce.committed) == 1


async def test_a_store_failure_after_kafka_committed_still_accepts_the_response() -> None:
    ingest = Ingest()
    ingest.store.fail = True
    receipt = await ingest.submissions.submit("c1", form(), None)
    assert not receipt.replayed
    assert len(ingest.produce.committed) == 1
    assert ingest.outcome("accepted") == 1


async def test_an_address_that_answered_before_is_held_until_its_link_is_followed() -> None:
    ingest = Ingest()
    with_email = {"profile": "journalist", "email": "someone@example.org"}
    first = await ingest.submissions.submit("c1", form(respondent=with_email), None)
    held = await ingest.submissions.submit(
        "c1", form(respondent=with_email, open_requests=[{"dataset_id": "d-closed", "priority": "useful"}]), None
    )
    assert held.pending
    assert held.respondent_token is None
    assert len(ingest.produce.committed) == 1  # the second answer is not counted yet
    [(to, _, body)] = ingest.mailer.sent
    assert to == "someone@example.org"
    link = next(line for line in body.splitlines() if line.startswith("https://"))
    pending_id, signature = link.split("/confirmation/")[1].split("?jeton=")
    with pytest.raises(Refused):
        await ingest.submissions.confirm("c1", pending_id, signature[::-1])
    confirmed = await ingest.submissions.confirm("c1", pending_id, signature)
    first_event, replacing = ingest.produce.events()
    assert replacing.respondent_key == first_event.respondent_key
    assert replacing.open_requests[0].priority.value == "useful"
    assert confirmed.respondent_token == first.respondent_token
    assert ingest.identity.pending == {}


async def test_a_held_answer_whose_link_cannot_be_mailed_is_unavailable() -> None:
    ingest = Ingest()
    with_email = {"profile": "journalist", "email": "someone@example.org"}
    await ingest.submissions.submit("c1", form(respondent=with_email), None)
    ingest.mailer.fail = True
    with pytest.raises(Unavailable):
        await ingest.submissions.submit("c1", form(respondent=with_email), None)
    assert ingest.outcome("mail_unavailable") == 1


async def test_a_withdrawal_is_produced_and_forgets_the_stored_form() -> None:
    ingest = Ingest()
    receipt = await ingest.submissions.submit("c1", form(respondent={"profile": "researcher"}), None)
    assert receipt.respondent_token
    await ingest.submissions.withdraw("c1", receipt.respondent_token)
    answered, withdrawn = ingest.produce.events()
    assert withdrawn.withdrawn
    assert withdrawn.respondent_key == answered.respondent_key
    assert withdrawn.profile.value == "researcher"
    assert ingest.store.forms == {}


# --- the web form's HTTP path ---------------------------------------------------------------------


def web_client(ingest: Ingest) -> httpx.AsyncClient:
    """The web form's router with `Submissions` on fakes and the two views filled by hand."""
    catalogue = CatalogueView("unused:9092", logging.getLogger("test"))
    for dataset_id, status in STATUSES.items():
        record = DatasetRecord(dataset_id=dataset_id, title=f"Title {dataset_id}", status=status, source="test")
        catalogue.put(
            dataset_id, DatasetCatalogued(event_id=dataset_id, occurred_at=OPENS, dataset_id=dataset_id, dataset=record)
        )
    app = FastAPI()
    settings = IngestSettings(pseudonym_secret=SecretStr(SECRET.decode()))
    app.include_router(
        web_router(settings, ingest.submissions, ingest.consultations, catalogue, lambda c, t: f"/{c}?t={t}")
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest.test")


FORM_FIELDS = {
    "profile": "journalist",
    "open-d-closed": "essential",
    "consent": "yes",
}


async def test_the_web_form_shows_the_datasets_and_posting_it_produces_one_response() -> None:
    ingest = Ingest()
    async with web_client(ingest) as client:
        page = await client.get("/consultations/c1")
        assert page.status_code == 200
        assert "Title d-closed" in page.text
        answered = await client.post("/consultations/c1", data=FORM_FIELDS | {"response_id": "web-0001"})
    assert answered.status_code == 200, answered.text
    [event] = ingest.produce.events()
    assert event.response_id == "web-0001"
    assert [(r.dataset_id, r.priority.value) for r in event.open_requests] == [("d-closed", "essential")]


async def test_the_web_form_answers_503_and_keeps_nothing_when_kafka_is_down() -> None:
    ingest = Ingest()
    ingest.produce.fail = True
    async with web_client(ingest) as client:
        answered = await client.post("/consultations/c1", data=FORM_FIELDS)
    assert answered.status_code == 503
    assert ingest.store.answers == {}


async def test_a_web_form_that_may_be_recorded_comes_back_with_its_response_id_and_counts_once() -> None:
    ingest = Ingest()
    ingest.produce.fail_after_commit = True
    async with web_client(ingest) as client:
        answered = await client.post("/consultations/c1", data=FORM_FIELDS | {"response_id": "web-maybe-1"})
        ingest.produce.fail_after_commit = False
        assert answered.status_code == 503
        assert answered.headers["retry-after"] == "5"
        assert "peut-être été enregistrée" in answered.text
        # The form again, filled in, with the same id: sending it is what the respondent does next.
        assert 'name="response_id" value="web-maybe-1"' in answered.text
        again = await client.post("/consultations/c1", data=FORM_FIELDS | {"response_id": "web-maybe-1"})
    assert again.status_code == 200, again.text
    events = ingest.produce.events()
    assert {(e.response_id, e.respondent_key) for e in events} == {("web-maybe-1", events[0].respondent_key)}


async def test_the_web_form_refuses_a_closed_consultation() -> None:
    ingest = Ingest(CLOSES)
    async with web_client(ingest) as client:
        assert (await client.get("/consultations/c1")).status_code == 409
        assert (await client.post("/consultations/c1", data=FORM_FIELDS)).status_code == 409
    assert ingest.produce.committed == []


# --- the JSON API's HTTP path ---------------------------------------------------------------------

ADMIN = {"Authorization": "Bearer service-test-admin"}
# The accept deadline of the API's `Definitions`: an early close takes effect this long after it is asked.
CLOSE_MARGIN_S = 0.05


def api_client(ingest: Ingest) -> httpx.AsyncClient:
    """The JSON API's router, with problem details, on `Submissions` and `Definitions` over fakes."""
    app = FastAPI()
    install_problem_handlers(app)
    definitions = Definitions(ingest.produce, ingest.consultations, clock=ingest.clock, deadline_s=CLOSE_MARGIN_S)
    api = IngestApi(
        "service-test-admin", [], ingest.submissions, definitions, ingest.consultations.get, lambda c, t: f"/{c}?t={t}"
    )
    app.include_router(api.router())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ingest.test")


def problem_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


def json_form(**fields: Any) -> dict[str, Any]:
    return form(**fields).model_dump(mode="json", exclude_none=True)


async def test_the_api_answers_202_with_where_to_amend_and_a_retry_gets_the_same_answer() -> None:
    ingest = Ingest()
    async with api_client(ingest) as client:
        first = await client.post("/v1/consultations/c1/responses", json=json_form(), headers={"Idempotency-Key": "k1"})
        ingest.clock.now = DURING + timedelta(seconds=5)
        retry = await client.post("/v1/consultations/c1/responses", json=json_form(), headers={"Idempotency-Key": "k1"})
    assert first.status_code == 202, first.text
    accepted = first.json()
    assert first.headers["location"] == f"/v1/consultations/c1/responses/{accepted['response_id']}"
    assert accepted["amend_url"] == f"/c1?t={accepted['respondent_token']}"
    assert accepted["pending"] is False
    assert retry.status_code == 202
    assert retry.json() == accepted
    assert len(ingest.produce.committed) == 1


async def test_the_api_refuses_with_problem_details_and_produces_nothing() -> None:
    ingest = Ingest(CLOSES)
    async with api_client(ingest) as client:
        closed = problem_of(await client.post("/v1/consultations/c1/responses", json=json_form()), 409)
        unknown = problem_of(await client.post("/v1/consultations/nope/responses", json=json_form()), 404)
    assert closed["window"] == "closed"
    assert "nope" in unknown["detail"]
    ingest = Ingest()
    bad = json_form(open_requests=[{"dataset_id": "d-unknown", "priority": "useful"}])
    async with api_client(ingest) as client:
        invalid = problem_of(await client.post("/v1/consultations/c1/responses", json=bad), 422)
    assert [e["pointer"] for e in invalid["errors"]] == ["/open_requests/0/dataset_id"]
    assert ingest.produce.committed == []


async def test_the_api_answers_503_with_retry_after_when_kafka_does_not_acknowledge() -> None:
    ingest = Ingest()
    ingest.produce.fail = True
    async with api_client(ingest) as client:
        answer = await client.post("/v1/consultations/c1/responses", json=json_form())
        defined = await client.put("/v1/consultations/c2", json=DEFINITION, headers=ADMIN)
    assert problem_of(answer, 503)["title"] == "Service Unavailable"
    assert answer.headers["retry-after"] == "5"
    assert problem_of(defined, 503)
    assert ingest.store.answers == {}
    assert ingest.consultations.get("c2") is None


async def test_a_withdrawal_through_the_api_needs_the_token_ingest_issued() -> None:
    ingest = Ingest()
    async with api_client(ingest) as client:
        accepted = (await client.post("/v1/consultations/c1/responses", json=json_form())).json()
        forged = await client.post("/v1/consultations/c1/withdrawal", json={"token": "A" * 43})
        withdrawn = await client.post("/v1/consultations/c1/withdrawal", json={"token": accepted["respondent_token"]})
    assert [e["pointer"] for e in problem_of(forged, 422)["errors"]] == ["/token"]
    assert withdrawn.status_code == 202, withdrawn.text
    assert withdrawn.json()["withdrawn"] is True
    assert [e.withdrawn for e in ingest.produce.events()] == [False, True]


DEFINITION = {
    "title": "Deuxième consultation",
    "opens_at": (DURING + timedelta(days=1)).isoformat(),
    "closes_at": (DURING + timedelta(days=9)).isoformat(),
}


async def test_administrators_define_a_consultation_produced_and_readable_at_once() -> None:
    ingest = Ingest()
    async with api_client(ingest) as client:
        anonymous = await client.put("/v1/consultations/c2", json=DEFINITION)
        empty = await client.put(
            "/v1/consultations/c2", json=DEFINITION | {"closes_at": DEFINITION["opens_at"]}, headers=ADMIN
        )
        defined = await client.put("/v1/consultations/c2", json=DEFINITION | {"description": "  "}, headers=ADMIN)
        read = await client.get("/v1/consultations/c2")
    assert problem_of(anonymous, 401)
    assert [e["pointer"] for e in problem_of(empty, 422)["errors"]] == ["/closes_at"]
    assert defined.status_code == 200, defined.text
    [(topic, key, event)] = ingest.produce.committed
    assert (topic, key) == (CONSULTATIONS, "c2")
    assert isinstance(event, ConsultationDefined)
    assert event.description is None
    assert read.json() == defined.json() == event.model_dump(mode="json")


async def test_closing_early_sets_the_close_one_deadline_ahead_and_refuses_responses_from_then_on() -> None:
    ingest = Ingest()
    async with api_client(ingest) as client:
        anonymous = await client.post("/v1/consultations/c1/close")
        unknown = await client.post("/v1/consultations/nope/close", headers=ADMIN)
        closed = await client.post("/v1/consultations/c1/close", headers=ADMIN)
        closes_at = DURING + timedelta(seconds=CLOSE_MARGIN_S)
        ingest.clock.now = closes_at - timedelta(milliseconds=1)
        last = await client.post("/v1/consultations/c1/responses", json=json_form())
        ingest.clock.now = closes_at
        again = await client.post("/v1/consultations/c1/close", headers=ADMIN)
        late = await client.post("/v1/consultations/c1/responses", json=json_form())
    assert problem_of(anonymous, 401)
    assert problem_of(unknown, 404)["detail"] == "No consultation 'nope'."
    assert closed.status_code == 200, closed.text
    # Committed within the deadline, so before the close: every replica can learn of it in time.
    assert datetime.fromisoformat(closed.json()["closes_at"]) == closes_at
    assert ingest.produce.deadlines[0] is not None
    assert last.status_code == 202, last.text
    assert problem_of(again, 409)
    assert problem_of(late, 409)["window"] == "closed"
    assert [topic for topic, _, _ in ingest.produce.committed] == [CONSULTATIONS, RESPONSES_SUBMITTED]


# --- one deadline from the receipt; a 503 that says whether the response may be recorded ----------


async def test_a_store_slower_than_the_deadline_answers_503_and_nothing_is_produced() -> None:
    ingest = Ingest(deadline_s=0.05)
    ingest.store.slow = asyncio.Event()  # the replay read never answers
    async with api_client(ingest) as client:
        answer = await client.post("/v1/consultations/c1/responses", json=json_form(response_id="slow-store-1"))
    body = problem_of(answer, 503)
    assert (body["response_id"], body["may_be_recorded"]) == ("slow-store-1", False)
    assert answer.headers["retry-after"] == "5"
    assert body["detail"].startswith("La réponse n'a pas pu être enregistrée")
    assert ingest.produce.committed == []
    assert ingest.outcome("deadline") == 1


async def test_a_commit_requested_but_not_confirmed_answers_503_that_may_be_recorded_and_a_retry_counts_once() -> None:
    ingest = Ingest()
    ingest.produce.fail_after_commit = True
    async with api_client(ingest) as client:
        first = await client.post("/v1/consultations/c1/responses", json=json_form())  # no id of the client's
        ingest.produce.fail_after_commit = False
        body = problem_of(first, 503)
        ingest.clock.now = DURING + timedelta(seconds=5)
        retry = await client.post("/v1/consultations/c1/responses", json=json_form(response_id=body["response_id"]))
    assert body["may_be_recorded"] is True
    assert first.headers["retry-after"] == "5"
    assert body["detail"].startswith("La réponse a peut-être été enregistrée")
    assert retry.status_code == 202, retry.text
    assert retry.json()["response_id"] == body["response_id"]
    events = ingest.produce.events()
    assert [e.response_id for e in events] == [body["response_id"]] * 2  # Kafka has both attempts
    # Scoring counts them as what they are: one respondent, one ballot.
    scoring = InMemoryScoringRepository()
    summaries = {"d-closed": DatasetSummary(dataset_id="d-closed", title="T", status=DatasetStatus.NOT_OPEN)}
    batch = [
        ResponseEnriched(event_id=e.event_id, occurred_at=e.received_at, response=e, datasets=summaries) for e in events
    ]
    await store_batch(scoring, batch, ScoringMetrics(CollectorRegistry()))
    assert (scoring.totals_by["c1"].respondents, len(scoring.stored)) == (1, 1)


async def test_a_response_received_after_a_close_another_replica_committed_is_refused_after_the_commit() -> None:
    ingest = Ingest()
    ingest.closes_elsewhere = CONSULTATION.model_copy(update={"closes_at": DURING})
    async with api_client(ingest) as client:
        late = await client.post("/v1/consultations/c1/responses", json=json_form(response_id="late-0001"))
        retried = await client.post("/v1/consultations/c1/responses", json=json_form(response_id="late-0001"))
    assert problem_of(late, 409)["window"] == "closed"
    assert problem_of(retried, 409)["window"] == "closed"
    assert ingest.store.answers == {}  # so that a retry is never answered 202 as a replay


async def test_a_response_received_before_a_close_another_replica_committed_is_accepted() -> None:
    ingest = Ingest()
    ingest.closes_elsewhere = CONSULTATION.model_copy(update={"closes_at": DURING + timedelta(milliseconds=1)})
    async with api_client(ingest) as client:
        accepted = await client.post("/v1/consultations/c1/responses", json=json_form(response_id="last-0001"))
    assert accepted.status_code == 202, accepted.text

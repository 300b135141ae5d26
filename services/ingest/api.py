"""Ingest's JSON API: consultations (read by anyone, defined and closed by administrators) and responses."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints

from services.ingest.handlers import ClientContext, Definitions, Refused, Submissions
from services.ingest.outbox import Unavailable
from shared.contracts import ConsultationDefined, ResponseForm
from shared.edge import client_of
from shared.http import ProblemError, administrators, problem_responses, require_admin

__all__ = ["Accepted", "ConsultationForm", "IngestApi", "Withdrawal", "Withdrawn"]

CONSULTATION_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
ConsultationId = Annotated[str, Path(pattern=CONSULTATION_ID, description="Consultation id.")]
SUBMISSION_STATUSES = (400, 404, 409, 413, 415, 422, 429, 503)


def _iso_text(value: object) -> object:
    # Pydantic would read a number as a Unix time; the document says a date-time string.
    if not isinstance(value, str):
        raise ValueError("attendu : une date ISO 8601 avec décalage / expected an ISO 8601 date-time with offset")
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


class ConsultationForm(BaseModel):
    """The body of `PUT /v1/consultations/{id}`: `closes_at` after `opens_at` (refused with 422 otherwise,
    a rule comparing two fields that JSON Schema cannot state)."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"\S")]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = Field(
        default=None, description="What the consultation is about, shown to respondents."
    )
    public_rankings: StrictBool = Field(
        default=False, description="Live rankings public while the window is open (staff only otherwise)."
    )
    opens_at: IsoDatetime = Field(description="First instant responses are accepted (ISO 8601 with offset).")
    closes_at: IsoDatetime = Field(
        description="First instant responses are refused (ISO 8601 with offset); must be after `opens_at`."
    )


class Withdrawal(BaseModel):
    """The body of `POST /v1/consultations/{id}/withdrawal`."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")] = Field(
        description="The respondent token ingest issued: only its holder may withdraw the answer."
    )


class Withdrawn(BaseModel):
    response_id: str = Field(description="Id of the withdrawal.")
    withdrawn: bool = True


class Accepted(BaseModel):
    """The answer to an accepted response."""

    response_id: str = Field(description="Id of the submission; retrying with it is safe.")
    respondent_token: str | None = Field(
        description="Send it back as respondent.token to amend the response (none while pending)."
    )
    received_at: AwareDatetime = Field(description="When ingest received it (the first time, for a retry).")
    amend_url: str | None = Field(description="Where the respondent can come back to amend until the close.")
    pending: bool = Field(
        default=False,
        description="True when the e-mail address had answered before: the response is held, not counted, until "
        "the link sent to that address is followed; only then does it replace the earlier answer.",
    )


RETRY_AFTER_S = "5"
NOT_RECORDED = (
    "La réponse n'a pas pu être enregistrée ; rien n'a été conservé. Réessayez avec le même response_id. / "
    "The response could not be stored; nothing was recorded. Please retry with the same response_id."
)
MAY_BE_RECORDED = (
    "La réponse a peut-être été enregistrée : Kafka n'a pas confirmé à temps. Réessayez avec le même "
    "response_id : elle ne sera comptée qu'une fois. / The response may have been recorded: Kafka did not "
    "confirm in time. Retry with the same response_id: it will be counted once."
)
UNAVAILABLE_RESPONSE = {
    "description": "Not recorded in time. `response_id` is the id the response was given (the client's, or one "
    "ingest assigned); `may_be_recorded` is true when the failure came after Kafka was asked to commit it, so that "
    "it may count all the same. Either way, retrying with the same `response_id` after `Retry-After` is safe: a "
    "response id is counted once.",
    "content": {
        "application/problem+json": {
            "schema": {
                "type": "object",
                "properties": {
                    "status": {"type": "integer"},
                    "title": {"type": "string"},
                    "detail": {"type": "string"},
                    "response_id": {"type": "string"},
                    "may_be_recorded": {"type": "boolean"},
                },
                "required": ["status", "title"],
            }
        }
    },
    "headers": {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}},
}


def kafka_unavailable(error: Unavailable) -> ProblemError:
    """The 503 of a write Kafka did not commit in time: whether it may be recorded, and under which id."""
    if error.response_id is None:
        return ProblemError(
            503,
            "Service Unavailable",
            "L'opération n'a pas pu être enregistrée. Réessayez. / The operation could not be stored. Please retry.",
            headers={"Retry-After": RETRY_AFTER_S},
            extensions={"may_be_recorded": error.may_be_recorded},
        )
    return ProblemError(
        503,
        "Service Unavailable",
        MAY_BE_RECORDED if error.may_be_recorded else NOT_RECORDED,
        headers={"Retry-After": RETRY_AFTER_S},
        extensions={"response_id": error.response_id, "may_be_recorded": error.may_be_recorded},
    )


@dataclass
class IngestApi:
    """The routes of the JSON API, on the use cases they call; each method is one operation."""

    admin_token: str
    trusted_proxies: Sequence[IPv4Network | IPv6Network]
    submissions: Submissions
    definitions: Definitions
    consultations: Callable[[str], ConsultationDefined | None]
    amend_url: Callable[[str, str], str]

    def router(self) -> APIRouter:
        router = APIRouter()
        path = "/v1/consultations/{consultation_id}"
        router.add_api_route(
            path,
            self.define_consultation,
            methods=["PUT"],
            responses=problem_responses(400, 401, 413, 415, 422, 503),
            tags=["administration"],
            dependencies=[administrators(self.admin_token)],
        )
        router.add_api_route(
            f"{path}/close",
            self.close_consultation,
            methods=["POST"],
            responses=problem_responses(401, 404, 409, 503),
            tags=["administration"],
        )
        router.add_api_route(
            path, self.get_consultation, methods=["GET"], responses=problem_responses(404), tags=["consultations"]
        )
        for suffix, endpoint in (("responses", self.submit_response), ("withdrawal", self.withdraw)):
            router.add_api_route(
                f"{path}/{suffix}",
                endpoint,
                methods=["POST"],
                status_code=202,
                responses=problem_responses(*SUBMISSION_STATUSES) | {503: UNAVAILABLE_RESPONSE},
                tags=["responses"],
            )
        return router

    async def define_consultation(self, consultation_id: ConsultationId, form: ConsultationForm) -> ConsultationDefined:
        """Create or change a consultation (administrators)."""
        try:
            return await self.definitions.define(
                consultation_id, form.title, form.description, form.public_rankings, form.opens_at, form.closes_at
            )
        except Refused as refused:
            raise refused.problem() from None
        except Unavailable as error:
            raise kafka_unavailable(error) from None

    async def close_consultation(
        self, consultation_id: ConsultationId, authorization: Annotated[str | None, Header()] = None
    ) -> ConsultationDefined:
        """Close a consultation now, before its `closes_at` (administrators). From this instant ingest
        refuses responses, and the publisher publishes the results once every earlier one is counted."""
        require_admin(authorization, self.admin_token)
        try:
            return await self.definitions.close(consultation_id)
        except Refused as refused:
            raise refused.problem() from None
        except Unavailable as error:
            raise kafka_unavailable(error) from None

    async def get_consultation(self, consultation_id: ConsultationId) -> ConsultationDefined:
        """A consultation's definition."""
        consultation = self.consultations(consultation_id)
        if consultation is None:
            raise HTTPException(404, f"No consultation {consultation_id!r}.")
        return consultation

    async def submit_response(
        self,
        consultation_id: ConsultationId,
        form: ResponseForm,
        request: Request,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Accepted:
        """Accept a response: 202 only once Kafka has it (acks=all). Retrying with the same
        `response_id` (or `Idempotency-Key`) returns the same answer and is counted once. A 503 gives the
        `response_id` to retry with, and says whether the response may be recorded all the same."""
        try:
            client = ClientContext(client_of(request.scope, self.trusted_proxies), request.headers.get("user-agent"))
            receipt = await self.submissions.submit(consultation_id, form, idempotency_key, client)
        except Refused as refused:
            raise refused.problem() from None
        except Unavailable as error:
            raise kafka_unavailable(error) from None
        response.headers["Location"] = f"/v1/consultations/{consultation_id}/responses/{receipt.response_id}"
        token = receipt.respondent_token
        return Accepted(
            response_id=receipt.response_id,
            respondent_token=token,
            received_at=receipt.received_at,
            amend_url=self.amend_url(consultation_id, token) if token else None,
            pending=receipt.pending,
        )

    async def withdraw(self, consultation_id: ConsultationId, body: Withdrawal) -> Withdrawn:
        """Withdraw a response with its respondent token, before the close: it leaves every ranking and the
        published archive. Answering again later (with the same token) counts again."""
        try:
            receipt = await self.submissions.withdraw(consultation_id, body.token)
        except Refused as refused:
            raise refused.problem() from None
        except Unavailable as error:
            raise kafka_unavailable(error) from None
        return Withdrawn(response_id=receipt.response_id)

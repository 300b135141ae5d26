"""Pages and API of the ministry's commitments and of the excerpts approved for publication."""

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.backoffice.commitments import Commitments, NotRecorded
from services.backoffice.domain import CommitmentDraft, CommitmentRefused, excerpt_id
from services.backoffice.repository import ContributionRepository, StaffSession
from services.backoffice.settings import BackofficeSettings
from services.backoffice.web import PageError, PageGroup
from shared.contracts import (
    CommitmentKind,
    CommitmentRecorded,
    CommitmentStatus,
    ConsultationDefined,
    ExcerptKind,
)
from shared.contracts.commitments import TARGET
from shared.http import ProblemError, administrators, problem_responses, require_admin
from shared.kafka import StateView

TARGET_FORMAT = "un trimestre (2027-T2) ou une date (2027-06-30) / a quarter (2027-T2) or a day (2027-06-30)"
WHAT_IT_NAMES = (
    "un engagement d'ajout nomme un groupe de suggestions, les autres un jeu de données / "
    "a commitment to add names a suggestion group, the others a dataset"
)
REASON_REQUIRED = "un abandon donne sa raison publique / a dropped commitment gives its public reason"
NOTE_REQUIRED = "une note publique en français est requise / a public note in French is required"
DRAFT_FIELDS = ("title", "service", "target", "status", "note_fr", "note_en", "reason", "done_url")


def default_commitment_id(kind: str, key: str) -> str:
    """One commitment of a kind per dataset or group unless staff choose otherwise."""
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class CommitmentPages(PageGroup):
    @property
    def commitments(self) -> Commitments:
        return self.ports.commitments

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        base = "/consultations/{consultation_id}"
        router.add_api_route(f"{base}/engagements", self.listed, methods=["GET"])
        router.add_api_route(f"{base}/engagements/nouveau", self.new, methods=["GET"])
        router.add_api_route(f"{base}/engagements/nouveau", self.save, methods=["POST"])
        router.add_api_route(f"{base}/engagements/{{commitment_id}}", self.edit, methods=["GET"])
        router.add_api_route(f"{base}/engagements/{{commitment_id}}", self.save, methods=["POST"])
        router.add_api_route(f"{base}/extraits/nouveau", self.new_excerpt, methods=["GET"])
        router.add_api_route(f"{base}/extraits/nouveau", self.approve, methods=["POST"])
        router.add_api_route(f"{base}/extraits/{{excerpt}}/retrait", self.withdraw, methods=["POST"])
        return router

    async def listed(self, request: Request, consultation_id: str, notice: str | None = None) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        return self.pages.render(
            request,
            "commitments.html",
            session,
            consultation=consultation,
            commitments=self.commitments.of(consultation_id),
            excerpts=self.commitments.excerpts_of(consultation_id),
            notice=notice if notice in ("saved", "approved", "withdrawn") else None,
        )

    def form(
        self,
        request: Request,
        session: StaffSession,
        consultation: ConsultationDefined,
        values: dict[str, Any],
        existing: CommitmentRecorded | None,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        return self.pages.render(
            request,
            "commitment_form.html",
            session,
            status,
            consultation=consultation,
            values=values,
            existing=existing,
            errors=errors or {},
            kinds=list(CommitmentKind),
            statuses=list(CommitmentStatus),
        )

    async def new(self, request: Request, consultation_id: str) -> Response:
        """The form of a new commitment on a ranked row: `type`, then `jeu` (a dataset) or `groupe`."""
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        query = request.query_params
        kind = CommitmentKind(query["type"]) if query.get("type") in set(CommitmentKind) else CommitmentKind.OPEN
        dataset, group = query.get("jeu") or None, query.get("groupe") or None
        key = group if kind is CommitmentKind.ADD else dataset
        if not key:
            raise PageError(404, "not_found")
        existing = self.commitments.get(consultation_id, default_commitment_id(kind.value, key))
        if existing is not None:
            return RedirectResponse(f"/consultations/{consultation_id}/engagements/{existing.commitment_id}", 303)
        values = dict.fromkeys((*DRAFT_FIELDS, "dataset_id", "suggestion_key"), "") | {
            "commitment_id": default_commitment_id(kind.value, key),
            "kind": kind.value,
            "dataset_id": dataset if kind is not CommitmentKind.ADD else "",
            "suggestion_key": group if kind is CommitmentKind.ADD else "",
            "title": query.get("titre") or (self.commitments.title_of(dataset) if dataset else None) or key,
            "service": self.commitments.service_of(dataset) if dataset else "",
            "status": CommitmentStatus.PLANNED.value,
        }
        return self.form(request, session, consultation, values, None)

    async def edit(self, request: Request, consultation_id: str, commitment_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        existing = self.commitments.get(consultation_id, commitment_id)
        if existing is None:
            raise PageError(404, "not_found")
        values = existing.model_dump(mode="json")
        values |= {key: values.get(key) or "" for key in ("note_en", "reason", "done_url")}
        return self.form(request, session, consultation, values, existing)

    async def save(self, request: Request, consultation_id: str, commitment_id: str | None = None) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        fields = await self.guard.form(request, session)
        existing = self.commitments.get(consultation_id, commitment_id) if commitment_id else None
        values: dict[str, Any] = {key: fields.get(key, "").strip() for key in (*DRAFT_FIELDS, "commitment_id", "kind")}
        values |= {
            "dataset_id": fields.get("dataset_id") or None,
            "suggestion_key": fields.get("suggestion_key") or None,
        }
        if existing is not None:  # what a commitment is about never changes
            values |= {
                "commitment_id": existing.commitment_id,
                "kind": existing.kind.value,
                "dataset_id": existing.dataset_id,
                "suggestion_key": existing.suggestion_key,
            }
        try:
            await self.commitments.record(draft_of(consultation_id, values), session.username)
        except CommitmentRefused as refused:
            errors = {refused.field: str(refused)}
            return self.form(request, session, consultation, values, existing, errors, 422)
        except NotRecorded:
            raise PageError(503, "unavailable") from None
        return RedirectResponse(f"/consultations/{consultation_id}/engagements?notice=saved", status_code=303)

    async def new_excerpt(self, request: Request, consultation_id: str, texte: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        text = await self.ports.contributions.text(consultation_id, texte)
        if text is None or text["kind"] not in set(ExcerptKind):
            raise PageError(404, "not_found")
        original = text.get("comment") or text.get("description") or ""
        context: dict[str, Any] = {"consultation": consultation, "text": text, "text_id": texte, "original": original}
        return self.pages.render(request, "excerpt_form.html", session, **context)

    async def approve(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        self.consultation_or_404(request, consultation_id)
        fields = await self.guard.form(request, session)
        text = await self.ports.contributions.text(consultation_id, fields.get("text_id", ""))
        edited = fields.get("text", "").strip()[:2000]
        if text is None or not edited:
            raise PageError(404, "not_found")
        kind = ExcerptKind(text["kind"])
        try:
            await self.commitments.approve(
                consultation_id,
                excerpt_id(fields["text_id"]),
                kind,
                text.get("dataset_title") or text.get("group_title") or "",
                edited,
                session.username,
                dataset_id=text.get("dataset_id") if kind is ExcerptKind.IMPROVEMENT else None,
                group_key=text.get("group_key") if kind is ExcerptKind.SUGGESTION else None,
            )
        except NotRecorded:
            raise PageError(503, "unavailable") from None
        return RedirectResponse(f"/consultations/{consultation_id}/engagements?notice=approved", status_code=303)

    async def withdraw(self, request: Request, consultation_id: str, excerpt: str) -> Response:
        session = await self.guard.staff(request)
        self.consultation_or_404(request, consultation_id)
        await self.guard.form(request, session)
        try:
            await self.commitments.withdraw(consultation_id, excerpt, session.username)
        except NotRecorded:
            raise PageError(503, "unavailable") from None
        return RedirectResponse(f"/consultations/{consultation_id}/engagements?notice=withdrawn", status_code=303)


NOT_BLANK: dict[str, Any] = {"type": "string", "pattern": r"\S"}
BLANK: dict[str, Any] = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": r"^\s*$"}]}
# The rules of `draft_of`, as JSON Schema: a commitment to add names a suggestion group (and its
# service, which no census gives), the others a dataset; a dropped one says why. The service checks
# them too, with its French-first messages; the census's service of a dataset is its own knowledge.
COMMITMENT_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"required": ["kind"], "properties": {"kind": {"const": CommitmentKind.ADD.value}}},
            "then": {
                "required": ["suggestion_key", "service"],
                "properties": {"suggestion_key": NOT_BLANK, "service": NOT_BLANK, "dataset_id": BLANK},
            },
            "else": {"required": ["dataset_id"], "properties": {"dataset_id": NOT_BLANK, "suggestion_key": BLANK}},
        },
        {
            "if": {"required": ["status"], "properties": {"status": {"const": CommitmentStatus.DROPPED.value}}},
            "then": {"required": ["reason"], "properties": {"reason": NOT_BLANK}},
        },
    ]
}


class CommitmentBody(BaseModel):
    """The body of `PUT /v1/consultations/{id}/commitments/{commitment_id}`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=COMMITMENT_RULES)

    kind: CommitmentKind
    dataset_id: str | None = Field(default=None, description="The dataset (kinds open and improve).")
    suggestion_key: str | None = Field(default=None, description="The suggestion group (kind add).")
    title: str | None = Field(default=None, max_length=300, description="Defaults to the catalogue's title.")
    service: str | None = Field(default=None, max_length=300, description="Defaults to the census's service.")
    target: str = Field(
        description="A quarter `2027-T2` or a day `2027-06-30`.",
        json_schema_extra={"pattern": r"^\s*\d{4}-(T[1-4]|(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))\s*$"},
    )
    status: CommitmentStatus = CommitmentStatus.PLANNED
    note: str = Field(
        min_length=1, max_length=2000, description="Public note, in French.", json_schema_extra={"pattern": r"\S"}
    )
    note_en: str | None = Field(default=None, max_length=2000, description="Public note, in English.")
    reason: str | None = Field(default=None, max_length=2000, description="Public reason, when dropped.")
    done_url: str | None = Field(default=None, max_length=500, description="Link to the dataset, when done.")


def commitments_api(
    settings: BackofficeSettings,
    commitments: Commitments,
    consultations: StateView[ConsultationDefined],
    contributions: ContributionRepository,
) -> APIRouter:
    """The same for administrators' scripts, with their bearer token."""
    router = APIRouter(tags=["commitments"])
    admin_token = settings.admin_token.get_secret_value()

    def consultation_or_404(consultation_id: str) -> None:
        if consultations.get(consultation_id) is None:
            raise ProblemError(404, "Not Found", f"No consultation {consultation_id!r}.")

    @router.put(
        "/v1/consultations/{consultation_id}/commitments/{commitment_id}",
        responses=problem_responses(401, 404, 422, 503),
        dependencies=[administrators(admin_token)],
    )
    async def put_commitment(
        consultation_id: str,
        commitment_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")],
        body: CommitmentBody,
    ) -> CommitmentRecorded:
        """Record a commitment or change it (its status history is kept)."""
        consultation_or_404(consultation_id)
        values = body.model_dump() | {"commitment_id": commitment_id, "note_fr": body.note}
        values["title"] = body.title or (commitments.title_of(body.dataset_id) if body.dataset_id else None)
        if not values["title"] and body.suggestion_key:
            values["title"] = await contributions.group_title(consultation_id, body.suggestion_key)
        values["title"] = values["title"] or body.suggestion_key or body.dataset_id or commitment_id
        values["service"] = body.service or (commitments.service_of(body.dataset_id) if body.dataset_id else "")
        try:
            return await commitments.record(draft_of(consultation_id, values), "api")
        except CommitmentRefused as refused:
            raise ProblemError(
                422, "Invalid request", str(refused), errors=[{"pointer": f"/{refused.field}", "detail": str(refused)}]
            ) from None
        except NotRecorded:
            raise ProblemError(
                503,
                "Service Unavailable",
                "Kafka did not take the commitment; nothing was recorded.",
                headers={"Retry-After": "5"},
            ) from None

    @router.get(
        "/v1/consultations/{consultation_id}/commitments/{commitment_id}", responses=problem_responses(401, 404)
    )
    async def get_commitment(
        consultation_id: str, commitment_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> CommitmentRecorded:
        """One commitment with its history."""
        require_admin(authorization, admin_token)
        found = commitments.get(consultation_id, commitment_id)
        if found is None:
            raise ProblemError(404, "Not Found", f"No commitment {commitment_id!r}.")
        return found

    @router.get("/v1/consultations/{consultation_id}/commitments", responses=problem_responses(401, 404))
    async def list_commitments(
        consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> list[CommitmentRecorded]:
        """Every commitment of a consultation."""
        require_admin(authorization, admin_token)
        consultation_or_404(consultation_id)
        return commitments.of(consultation_id)

    return router


def draft_of(consultation_id: str, values: dict[str, Any]) -> CommitmentDraft:
    def text(key: str) -> str | None:
        value = values.get(key)
        return str(value).strip() if value not in (None, "") else None

    try:
        kind = CommitmentKind(str(values.get("kind")))
    except ValueError:
        raise CommitmentRefused("kind", "type d'engagement inconnu / unknown kind of commitment") from None
    try:
        status = CommitmentStatus(values.get("status") or CommitmentStatus.PLANNED)
    except ValueError:
        raise CommitmentRefused("status", "statut inconnu / unknown status") from None
    if not text("note_fr"):
        raise CommitmentRefused(
            "note_fr", "une note publique en français est requise / a public note in French is required"
        )
    if not text("service"):
        raise CommitmentRefused("service", "indiquez le service chargé / name the service in charge")
    if not TARGET.match(text("target") or ""):
        raise CommitmentRefused("target", TARGET_FORMAT)
    if (kind is CommitmentKind.ADD) != bool(text("suggestion_key")) or (kind is not CommitmentKind.ADD) != bool(
        text("dataset_id")
    ):
        raise CommitmentRefused("kind", WHAT_IT_NAMES)
    if status is CommitmentStatus.DROPPED and not text("reason"):
        raise CommitmentRefused("reason", REASON_REQUIRED)
    return CommitmentDraft(
        consultation_id=consultation_id,
        commitment_id=str(values.get("commitment_id") or ""),
        kind=kind,
        dataset_id=text("dataset_id"),
        suggestion_key=text("suggestion_key"),
        title=text("title") or "",
        service=text("service") or "",
        target=text("target") or "",
        status=status,
        note_fr=text("note_fr") or "",
        note_en=text("note_en"),
        reason=text("reason"),
        done_url=text("done_url"),
    )

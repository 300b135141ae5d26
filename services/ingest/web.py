"""The reference questionnaire: server-rendered, French first, usable without JavaScript."""

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from services.ingest.handlers import ClientContext, Receipt, Refused, Submissions
from services.ingest.outbox import Unavailable
from services.ingest.pages import public_page
from services.ingest.settings import IngestSettings
from services.ingest.webform import bilingual, field_id_for, parse_web_form, view_of
from shared.contracts import (
    IMPROVEMENT_LABELS,
    PRIVACY_NOTICE,
    PROFILE_LABELS,
    ConsultationDefined,
    DatasetCatalogued,
    DatasetRecord,
    DatasetStatus,
    ResponseForm,
    utc_now,
)
from shared.contracts.territories import DEPARTEMENTS, REGIONS
from shared.edge import client_of
from shared.kafka import StateView

HERE = Path(__file__).resolve().parent
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
INVALID_LINK = "Ce lien n'est pas valide. / This link is not valid."
RETRY = "Rien n'a été enregistré ; réessayez dans quelques instants. / Nothing was recorded; retry in a moment."

FIELD_LABELS = {
    "profile": "Vous êtes / You are",
    "organisation": "Organisation",
    "departement": "Département",
    "region": "Région / Region",
    "email": "Adresse électronique / E-mail",
    "consent": "Consentement / Consent",
    "satisfaction-1": "Satisfaction",
    "platform-comment": "La plateforme / The platform",
}
PRIORITY_LABELS = [
    ("essential", "Essentiel", "Essential"),
    ("important", "Important", "Important"),
    ("useful", "Utile", "Useful"),
]


def web_router(
    settings: IngestSettings,
    submissions: Submissions,
    consultations: StateView[ConsultationDefined],
    catalogue: StateView[DatasetCatalogued],
    amend_url: Callable[[str, str], str],
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = public_page

    def datasets(status: DatasetStatus) -> list[DatasetRecord]:
        found = [e.dataset for e in catalogue.items.values() if not e.retired and e.dataset.status is status]
        return sorted(found, key=lambda d: (d.organisation or "", d.title.casefold()))

    def form_page(
        consultation: ConsultationDefined,
        values: dict[str, Any],
        token: str | None,
        errors: list[dict[str, str]] | None = None,
        status: int = 200,
        notice: str | None = None,
        served: str | None = None,
    ) -> HTMLResponse:
        errors = errors or []
        # Each invalid control shows its own messages next to it, as well as in the summary.
        field_errors: dict[str, list[str]] = {}
        for error in errors:
            field_errors.setdefault(error["field"], []).append(error["detail"])
        return page(
            "form.html",
            status,
            consultation=consultation,
            values=values,
            token=token,
            errors=errors,
            field_errors=field_errors,
            notice=notice,
            response_id=uuid.uuid4().hex,
            served=served or submissions.form_stamp(consultation.consultation_id),
            privacy_notice=PRIVACY_NOTICE,
            to_open=datasets(DatasetStatus.NOT_OPEN),
            to_improve=datasets(DatasetStatus.OPEN),
            profiles=PROFILE_LABELS,
            kinds=IMPROVEMENT_LABELS,
            priorities=PRIORITY_LABELS,
            departements=DEPARTEMENTS,
            regions=REGIONS,
        )

    def label_of(control: str) -> str:
        """How the summary names a control, so two errors of the same kind read apart."""
        if control in FIELD_LABELS:
            return FIELD_LABELS[control]
        kind, _, rest = control.partition("-")
        if kind == "open":
            entry = catalogue.get(rest.rsplit("-", 1)[0])
            return entry.dataset.title if entry else "Données à ouvrir / Data to open"
        number = int(rest.split("-", 1)[0]) + 1 if rest[:1].isdigit() else 0
        if kind == "improve":
            return f"Jeu de données à améliorer n° {number} / Dataset to improve #{number}"
        if kind == "suggestion":
            return f"Suggestion n° {number} / Suggestion #{number}"
        return "Réponse / Response"

    def refusal_page(refused: Refused) -> HTMLResponse:
        return page("message.html", refused.status, title=refused.title, detail=refused.detail)

    @router.get("/confidentialite")
    async def privacy() -> HTMLResponse:
        """The privacy notice the consent refers to, in the version in force."""
        return page(
            "privacy.html",
            privacy_notice=PRIVACY_NOTICE,
            controller=settings.privacy_controller,
            contact=settings.privacy_contact,
            retention_months=round(settings.response_retention_days / 30.44),
        )

    @router.get("/")
    async def index() -> HTMLResponse:
        now = utc_now()
        open_now = [c for c in consultations.items.values() if c.is_open_at(now)]
        return page("index.html", consultations=sorted(open_now, key=lambda c: c.closes_at))

    @router.get("/consultations/{consultation_id}")
    async def questionnaire(consultation_id: str, token: str | None = None) -> Response:
        try:
            consultation = submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        stored, notice = None, None
        if token is not None and not (TOKEN.match(token) and submissions.token_issued(consultation_id, token)):
            token, notice = None, "Ce lien de modification n'est pas valide. / This amend link is not valid."
        elif token is not None:
            stored = await submissions.latest_form(consultation_id, token)
            notice = (
                "Voici votre réponse précédente : modifiez-la puis envoyez-la. / Here is your previous "
                "response: change it, then send it."
                if stored
                else None
            )
        values = view_of(stored, settings.improve_slots, settings.suggestion_slots)
        return form_page(consultation, values, token, notice=notice)

    @router.post("/consultations/{consultation_id}")
    async def submit(consultation_id: str, request: Request) -> Response:
        try:
            consultation = submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        fields = await request.form()
        parsed = parse_web_form(
            {key: [str(v) for v in fields.getlist(key)] for key in fields},
            settings.improve_slots,
            settings.suggestion_slots,
        )
        token = parsed.body["respondent"].get("token")
        values = view_of(parsed.body, settings.improve_slots, settings.suggestion_slots)

        def with_errors(errors: list[tuple[str, str]], status: int) -> HTMLResponse:
            listed = []
            for pointer, message in errors:
                control = field_id_for(pointer, parsed.field_ids)
                listed.append({"field": control, "message": f"{label_of(control)} : {message}", "detail": message})
            # The stamp the form was first served with, so a refused attempt does not restart the clock.
            return form_page(consultation, values, token, listed, status, served=str(fields.get("served") or ""))

        try:
            form = ResponseForm.model_validate(parsed.body)
        except ValidationError as error:
            return with_errors(
                [
                    ("/" + "/".join(str(p) for p in item["loc"]), bilingual(item["type"], item["msg"]))
                    for item in error.errors()
                ],
                422,
            )
        try:
            client = ClientContext(
                client_of(request.scope, settings.trusted_proxies),
                request.headers.get("user-agent"),
                str(fields.get("served") or "") or None,
            )
            receipt = await submissions.submit(consultation_id, form, None, client)
        except Refused as refused:
            if refused.errors:
                return with_errors([(e.pointer, e.detail) for e in refused.errors], refused.status)
            return refusal_page(refused)
        except Unavailable:
            return page(
                "message.html",
                503,
                title="Service indisponible / Service unavailable",
                detail="Votre réponse n'a pas pu être enregistrée ; rien n'a été conservé. Réessayez dans "
                "quelques instants. / Your response could not be stored; nothing was recorded. Please "
                "retry in a moment.",
            )
        return receipt_page(consultation, receipt)

    def receipt_page(consultation: ConsultationDefined, receipt: Receipt) -> HTMLResponse:
        if receipt.pending or receipt.respondent_token is None:
            return page("pending.html", 202, consultation=consultation)
        return page(
            "confirmation.html",
            consultation=consultation,
            token=receipt.respondent_token,
            response_id=receipt.response_id,
            amend_url=amend_url(consultation.consultation_id, receipt.respondent_token),
        )

    @router.get("/consultations/{consultation_id}/retrait")
    async def withdrawal_page(consultation_id: str, token: str = "") -> Response:
        """The withdrawal's confirmation step (a GET changes nothing)."""
        try:
            consultation = submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        if not (TOKEN.match(token) and submissions.token_issued(consultation_id, token)):
            return page("message.html", 422, title="Lien non valide / Invalid link", detail=INVALID_LINK)
        return page("withdraw.html", consultation=consultation, token=token)

    @router.post("/consultations/{consultation_id}/retrait")
    async def withdraw(consultation_id: str, request: Request) -> Response:
        fields = await request.form()
        try:
            consultation = submissions.consultation(consultation_id)
            await submissions.withdraw(consultation_id, str(fields.get("token", "")))
        except Refused as refused:
            return page("message.html", refused.status, title=refused.title, detail=refused.detail)
        except Unavailable:
            return page("message.html", 503, title="Service indisponible / Service unavailable", detail=RETRY)
        return page("withdrawn.html", consultation=consultation)

    @router.get("/consultations/{consultation_id}/confirmation/{pending_id}")
    async def confirmation_link(consultation_id: str, pending_id: str, jeton: str = "") -> Response:
        """The link sent to an address that answered again: a button, since a GET changes nothing."""
        try:
            consultation = submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        return page("confirm.html", consultation=consultation, pending_id=pending_id, jeton=jeton)

    @router.post("/consultations/{consultation_id}/confirmation/{pending_id}")
    async def confirm(consultation_id: str, pending_id: str, request: Request) -> Response:
        fields = await request.form()
        try:
            consultation = submissions.consultation(consultation_id)
            receipt = await submissions.confirm(consultation_id, pending_id, str(fields.get("jeton", "")))
        except Refused as refused:
            return refusal_page(refused)
        except Unavailable:
            return page(
                "message.html",
                503,
                title="Service indisponible / Service unavailable",
                detail="Rien n'a été enregistré ; réessayez dans quelques instants avec le même lien. / Nothing "
                "was recorded; retry in a moment with the same link.",
            )
        return receipt_page(consultation, receipt)

    return router


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")

"""The reference questionnaire: server-rendered, French first, usable without JavaScript."""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
from shared.catalogue_view import CatalogueView
from shared.contracts import (
    IMPROVEMENT_LABELS,
    PRIVACY_NOTICE,
    PROFILE_LABELS,
    ConsultationDefined,
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
RETRY_LINK = (
    "Rien n'a été enregistré ; réessayez dans quelques instants avec le même lien. / Nothing "
    "was recorded; retry in a moment with the same link."
)
NOT_STORED = (
    "Votre réponse n'a pas pu être enregistrée ; rien n'a été conservé. Renvoyez ce formulaire dans "
    "quelques instants. / Your response could not be stored; nothing was recorded. Please send this "
    "form again in a moment."
)
MAYBE_STORED = (
    "Votre réponse a peut-être été enregistrée, sans confirmation à temps. Renvoyez ce formulaire dans "
    "quelques instants : elle ne sera comptée qu'une fois. / Your response may have been recorded, without "
    "confirmation in time. Send this form again in a moment: it will be counted once."
)

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
UNAVAILABLE = "Service indisponible / Service unavailable"


def web_router(
    settings: IngestSettings,
    submissions: Submissions,
    consultations: StateView[ConsultationDefined],
    catalogue: CatalogueView,
    amend_url: Callable[[str, str], str],
) -> APIRouter:
    """The questionnaire's routes, on the submission use case and the two views it shows."""
    return WebForm(settings, submissions, consultations, catalogue, amend_url).router()


@dataclass
class WebForm:
    """The questionnaire's pages: the form, its answer, the withdrawal and the confirmation of a held answer."""

    settings: IngestSettings
    submissions: Submissions
    consultations: StateView[ConsultationDefined]
    catalogue: CatalogueView
    amend_url: Callable[[str, str], str]

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/confidentialite", self.privacy, methods=["GET"])
        router.add_api_route("/", self.index, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}", self.questionnaire, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}", self.submit, methods=["POST"])
        router.add_api_route("/consultations/{consultation_id}/retrait", self.withdrawal_page, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}/retrait", self.withdraw, methods=["POST"])
        confirmation = "/consultations/{consultation_id}/confirmation/{pending_id}"
        router.add_api_route(confirmation, self.confirmation_link, methods=["GET"])
        router.add_api_route(confirmation, self.confirm, methods=["POST"])
        return router

    def datasets(self, status: DatasetStatus) -> list[DatasetRecord]:
        found = [d for d in self.catalogue.datasets().values() if d.status is status]
        return sorted(found, key=lambda d: (d.organisation or "", d.title.casefold()))

    def form_page(
        self,
        consultation: ConsultationDefined,
        values: dict[str, Any],
        token: str | None,
        errors: list[dict[str, str]] | None = None,
        status: int = 200,
        notice: str | None = None,
        served: str | None = None,
        response_id: str | None = None,
    ) -> HTMLResponse:
        errors = errors or []
        # Each invalid control shows its own messages next to it, as well as in the summary.
        field_errors: dict[str, list[str]] = {}
        for error in errors:
            field_errors.setdefault(error["field"], []).append(error["detail"])
        return public_page(
            "form.html",
            status,
            consultation=consultation,
            values=values,
            token=token,
            errors=errors,
            field_errors=field_errors,
            notice=notice,
            response_id=response_id or uuid.uuid4().hex,
            served=served or self.submissions.form_stamp(consultation.consultation_id),
            privacy_notice=PRIVACY_NOTICE,
            to_open=self.datasets(DatasetStatus.NOT_OPEN),
            to_improve=self.datasets(DatasetStatus.OPEN),
            profiles=PROFILE_LABELS,
            kinds=IMPROVEMENT_LABELS,
            priorities=PRIORITY_LABELS,
            departements=DEPARTEMENTS,
            regions=REGIONS,
        )

    def label_of(self, control: str) -> str:
        """How the summary names a control, so two errors of the same kind read apart."""
        if control in FIELD_LABELS:
            return FIELD_LABELS[control]
        kind, _, rest = control.partition("-")
        if kind == "open":
            entry = self.catalogue.get(rest.rsplit("-", 1)[0])
            return entry.dataset.title if entry else "Données à ouvrir / Data to open"
        number = int(rest.split("-", 1)[0]) + 1 if rest[:1].isdigit() else 0
        if kind == "improve":
            return f"Jeu de données à améliorer n° {number} / Dataset to improve #{number}"
        if kind == "suggestion":
            return f"Suggestion n° {number} / Suggestion #{number}"
        return "Réponse / Response"

    def receipt_page(self, consultation: ConsultationDefined, receipt: Receipt) -> HTMLResponse:
        if receipt.pending or receipt.respondent_token is None:
            return public_page("pending.html", 202, consultation=consultation)
        return public_page(
            "confirmation.html",
            consultation=consultation,
            token=receipt.respondent_token,
            response_id=receipt.response_id,
            amend_url=self.amend_url(consultation.consultation_id, receipt.respondent_token),
        )

    async def privacy(self) -> HTMLResponse:
        """The privacy notice the consent refers to, in the version in force."""
        return public_page(
            "privacy.html",
            privacy_notice=PRIVACY_NOTICE,
            controller=self.settings.privacy_controller,
            contact=self.settings.privacy_contact,
            retention_months=round(self.settings.response_retention_days / 30.44),
        )

    async def index(self) -> HTMLResponse:
        now = utc_now()
        open_now = [c for c in self.consultations.items.values() if c.is_open_at(now)]
        return public_page("index.html", consultations=sorted(open_now, key=lambda c: c.closes_at))

    async def questionnaire(self, consultation_id: str, token: str | None = None) -> Response:
        try:
            consultation = self.submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        stored, notice = None, None
        if token is not None and not (TOKEN.match(token) and self.submissions.token_issued(consultation_id, token)):
            token, notice = None, "Ce lien de modification n'est pas valide. / This amend link is not valid."
        elif token is not None:
            stored = await self.submissions.latest_form(consultation_id, token)
            notice = (
                "Voici votre réponse précédente : modifiez-la puis envoyez-la. / Here is your previous "
                "response: change it, then send it."
                if stored
                else None
            )
        values = view_of(stored, self.settings.improve_slots, self.settings.suggestion_slots)
        return self.form_page(consultation, values, token, notice=notice)

    async def submit(self, consultation_id: str, request: Request) -> Response:
        try:
            consultation = self.submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        fields = await request.form()
        slots = (self.settings.improve_slots, self.settings.suggestion_slots)
        parsed = parse_web_form({key: [str(v) for v in fields.getlist(key)] for key in fields}, *slots)
        token = parsed.body["respondent"].get("token")
        values = view_of(parsed.body, *slots)
        served = str(fields.get("served") or "")

        def with_errors(errors: list[tuple[str, str]], status: int) -> HTMLResponse:
            listed = []
            for pointer, message in errors:
                control = field_id_for(pointer, parsed.field_ids)
                listed.append({"field": control, "message": f"{self.label_of(control)} : {message}", "detail": message})
            # The stamp the form was first served with, so a refused attempt does not restart the clock.
            return self.form_page(consultation, values, token, listed, status, served=served)

        try:
            form = ResponseForm.model_validate(parsed.body)
        except ValidationError as error:
            invalid = [
                ("/" + "/".join(str(p) for p in e["loc"]), bilingual(e["type"], e["msg"])) for e in error.errors()
            ]
            return with_errors(invalid, 422)
        try:
            client = ClientContext(
                client_of(request.scope, self.settings.trusted_proxies),
                request.headers.get("user-agent"),
                served or None,
            )
            receipt = await self.submissions.submit(consultation_id, form, None, client)
        except Refused as refused:
            if refused.errors:
                return with_errors([(e.pointer, e.detail) for e in refused.errors], refused.status)
            return refusal_page(refused)
        except Unavailable as error:
            # The same form again, with the same response id: sending it again is counted once.
            notice = MAYBE_STORED if error.may_be_recorded else NOT_STORED
            page = self.form_page(
                consultation, values, token, status=503, notice=notice, served=served, response_id=error.response_id
            )
            page.headers["Retry-After"] = "5"
            return page
        return self.receipt_page(consultation, receipt)

    async def withdrawal_page(self, consultation_id: str, token: str = "") -> Response:
        """The withdrawal's confirmation step (a GET changes nothing)."""
        try:
            consultation = self.submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        if not (TOKEN.match(token) and self.submissions.token_issued(consultation_id, token)):
            return public_page("message.html", 422, title="Lien non valide / Invalid link", detail=INVALID_LINK)
        return public_page("withdraw.html", consultation=consultation, token=token)

    async def withdraw(self, consultation_id: str, request: Request) -> Response:
        fields = await request.form()
        try:
            consultation = self.submissions.consultation(consultation_id)
            await self.submissions.withdraw(consultation_id, str(fields.get("token", "")))
        except Refused as refused:
            return refusal_page(refused)
        except Unavailable:
            return public_page("message.html", 503, title=UNAVAILABLE, detail=RETRY)
        return public_page("withdrawn.html", consultation=consultation)

    async def confirmation_link(self, consultation_id: str, pending_id: str, jeton: str = "") -> Response:
        """The link sent to an address that answered again: a button, since a GET changes nothing."""
        try:
            consultation = self.submissions.consultation(consultation_id)
        except Refused as refused:
            return refusal_page(refused)
        return public_page("confirm.html", consultation=consultation, pending_id=pending_id, jeton=jeton)

    async def confirm(self, consultation_id: str, pending_id: str, request: Request) -> Response:
        fields = await request.form()
        try:
            consultation = self.submissions.consultation(consultation_id)
            receipt = await self.submissions.confirm(consultation_id, pending_id, str(fields.get("jeton", "")))
        except Refused as refused:
            return refusal_page(refused)
        except Unavailable:
            return public_page("message.html", 503, title=UNAVAILABLE, detail=RETRY_LINK)
        return self.receipt_page(consultation, receipt)


def refusal_page(refused: Refused) -> HTMLResponse:
    return public_page("message.html", refused.status, title=refused.title, detail=refused.detail)


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")

"""Consultations: the list with their status, created, edited and closed through ingest's API."""

import asyncio
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.backoffice.domain import local_datetime, status_of
from services.backoffice.repository import StaffSession
from services.backoffice.upstream import ResultsState, UpstreamError
from services.backoffice.web import PageGroup
from shared.contracts import ConsultationDefined, utc_now

CONSULTATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFINITION_FIELDS = ("consultation_id", "title", "description", "opens_at", "closes_at")
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


class ConsultationPages(PageGroup):
    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/consultations", self.listed, methods=["GET"])
        router.add_api_route("/consultations/nouvelle", self.new, methods=["GET"])
        router.add_api_route("/consultations/nouvelle", self.create, methods=["POST"])
        router.add_api_route("/consultations/{consultation_id}/modifier", self.edit, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}/modifier", self.save, methods=["POST"])
        router.add_api_route("/consultations/{consultation_id}/cloture", self.close_form, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}/cloture", self.close, methods=["POST"])
        return router

    async def listed(self, request: Request, notice: str | None = None) -> Response:
        session = await self.guard.staff(request)
        listed = sorted(self.ports.consultations.items.values(), key=lambda c: c.opens_at, reverse=True)
        states = await asyncio.gather(*(self._results(c.consultation_id) for c in listed))
        now = utc_now()
        rows = [
            {"consultation": c, "status": status_of(c, now, state is not None), "results": state}
            for c, state in zip(listed, states, strict=True)
        ]
        notice = notice if notice in ("saved", "closed") else None
        return self.pages.render(request, "consultations.html", session, rows=rows, notice=notice)

    async def _results(self, consultation_id: str) -> ResultsState | None:
        try:
            return await self.ports.upstream.results(consultation_id)
        except UpstreamError:
            return None

    def form(
        self,
        request: Request,
        session: StaffSession,
        consultation: ConsultationDefined | None,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        context: dict[str, Any] = {"consultation": consultation, "values": values, "errors": errors or {}}
        return self.pages.render(request, "consultation_form.html", session, status, **context)

    def values_of(self, consultation: ConsultationDefined) -> dict[str, str]:
        zone = self.pages.zone
        return {
            "consultation_id": consultation.consultation_id,
            "title": consultation.title,
            "description": consultation.description or "",
            "opens_at": consultation.opens_at.astimezone(zone).strftime(LOCAL_INPUT),
            "closes_at": consultation.closes_at.astimezone(zone).strftime(LOCAL_INPUT),
            "public_rankings": "yes" if consultation.public_rankings else "",
        }

    async def new(self, request: Request) -> Response:
        session = await self.guard.staff(request)
        start = utc_now().astimezone(self.pages.zone).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        values = dict.fromkeys(DEFINITION_FIELDS, "") | {
            "opens_at": start.strftime(LOCAL_INPUT),
            "closes_at": (start + timedelta(days=61)).strftime(LOCAL_INPUT),
            "public_rankings": "",
        }
        return self.form(request, session, None, values)

    async def create(self, request: Request) -> Response:
        session = await self.guard.staff(request)
        return await self._save(request, session, None)

    async def edit(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        return self.form(request, session, consultation, self.values_of(consultation))

    async def save(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        return await self._save(request, session, self.consultation_or_404(request, consultation_id))

    async def _save(
        self, request: Request, session: StaffSession, consultation: ConsultationDefined | None
    ) -> Response:
        fields = await self.guard.form(request, session)
        values = {key: fields.get(key, "").strip() for key in DEFINITION_FIELDS}
        values["public_rankings"] = "yes" if fields.get("public_rankings") == "yes" else ""
        if consultation is not None:
            values["consultation_id"] = consultation.consultation_id
        errors = definition_errors(values, self.pages.zone, self.pages.lang(request))
        if not errors:
            errors = await self._define(values)
        if errors:
            return self.form(request, session, consultation, values, errors, 422)
        action = "consultation.edit" if consultation else "consultation.create"
        window = f"{values['opens_at']} → {values['closes_at']}"
        await self.audit(session, action, values["consultation_id"], f"{values['title']} ({window})")
        return RedirectResponse("/consultations?notice=saved", status_code=303)

    async def _define(self, values: dict[str, str]) -> dict[str, str]:
        """Define the consultation through ingest; the errors it gives, by field."""
        definition: dict[str, Any] = {
            "title": values["title"],
            "description": values["description"] or None,
            "opens_at": local_datetime(values["opens_at"], self.pages.zone).isoformat(),
            "closes_at": local_datetime(values["closes_at"], self.pages.zone).isoformat(),
            "public_rankings": values["public_rankings"] == "yes",
        }
        try:
            defined = await self.ports.upstream.define_consultation(values["consultation_id"], definition)
        except UpstreamError as error:
            by_field = {e["pointer"].strip("/") or "form": e["detail"] for e in error.errors}
            return by_field or {"form": error.detail}
        self.ports.consultations.put(defined.consultation_id, defined)  # before it comes back from Kafka
        return {}

    async def close_form(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        return self.pages.render(request, "close.html", session, consultation=consultation, error=None)

    async def close(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        await self.guard.form(request, session)
        try:
            closed = await self.ports.upstream.close_consultation(consultation_id)
        except UpstreamError as error:
            status = 409 if error.status == 409 else 503
            context: dict[str, Any] = {"consultation": consultation, "error": error.detail}
            return self.pages.render(request, "close.html", session, status, **context)
        self.ports.consultations.put(consultation_id, closed)
        await self.audit(session, "consultation.close", consultation_id, consultation.title)
        return RedirectResponse("/consultations?notice=closed", status_code=303)


def definition_errors(values: dict[str, str], zone: ZoneInfo, lang: str) -> dict[str, str]:
    """What is wrong with a consultation as typed, by field, in the staff member's language."""
    fr = lang != "en"
    errors: dict[str, str] = {}
    if not CONSULTATION_ID.match(values["consultation_id"]):
        errors["consultation_id"] = (
            "Identifiant invalide : lettres minuscules, chiffres et tirets." if fr else "Invalid identifier."
        )
    if not values["title"]:
        errors["title"] = "Indiquez un titre." if fr else "Give a title."
    if len(values["description"]) > 4000:
        errors["description"] = "4 000 caractères au plus." if fr else "At most 4,000 characters."
    instants = {}
    for key in ("opens_at", "closes_at"):
        try:
            instants[key] = local_datetime(values[key], zone)
        except ValueError:
            errors[key] = "Date et heure invalides." if fr else "Invalid date and time."
    if len(instants) == 2 and instants["closes_at"] <= instants["opens_at"]:
        errors["closes_at"] = (
            "La clôture doit suivre l'ouverture." if fr else "The closing must come after the opening."
        )
    return errors

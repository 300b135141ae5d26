"""The workspace's pages: server-rendered, French first, usable without JavaScript."""

import asyncio
import csv
import io
import logging
import math
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.backoffice.auth import SESSION_COOKIE, SIGNIN_CSRF_COOKIE, Refused, SignedIn, StaffAuth, same_secret
from services.backoffice.domain import (
    TextKind,
    bar_chart,
    daily_series,
    local_datetime,
    normalise,
    spreadsheet_safe,
    status_of,
)
from services.backoffice.handlers import BackofficeMetrics
from services.backoffice.i18n import LANGUAGES, improvement_label, profile_label, translator
from services.backoffice.repository import ContributionRepository, StaffRepository, StaffSession, TextFilter
from services.backoffice.settings import BackofficeSettings
from services.backoffice.upstream import Upstream, UpstreamError
from shared.contracts import ConsultationDefined, ImprovementKind, Priority, Profile, utc_now
from shared.http import problem, store_unavailable, unavailable
from shared.kafka import StateView
from shared.web import page_templates, render_page

HERE = Path(__file__).resolve().parent
LANG_COOKIE = "cod_lang"
CONSULTATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RANKING_LIMIT = 50
VIEWS = {"ameliorations": TextKind.IMPROVEMENT, "suggestions": TextKind.SUGGESTION, "plateforme": TextKind.PLATFORM}
RANKING_KINDS = ("open", "improve", "suggestions")


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    def __init__(self, status: int, title_key: str, detail: str = "") -> None:
        super().__init__(title_key)
        self.status = status
        self.title_key = title_key
        self.detail = detail


@dataclass(frozen=True)
class Ports:
    settings: BackofficeSettings
    auth: StaffAuth
    staff: StaffRepository
    contributions: ContributionRepository
    upstream: Upstream
    consultations: StateView[ConsultationDefined]
    metrics: BackofficeMetrics
    stopping: asyncio.Event


class Pages:
    """Renders the workspace's templates with what every page needs."""

    def __init__(self, settings: BackofficeSettings) -> None:
        self.zone = ZoneInfo(settings.timezone)
        self.templates = page_templates(HERE / "templates")
        self.templates.filters["local"] = self.local
        self.templates.globals.update(
            profile_label=profile_label,
            improvement_label=improvement_label,
            profiles=list(Profile),
            improvement_kinds=list(ImprovementKind),
            priorities=list(Priority),
            form_url=settings.form_public_url,
            results_url=settings.results_public_url,
        )

    def local(self, instant: datetime | None, with_time: bool = True) -> str:
        if instant is None:
            return ""
        return instant.astimezone(self.zone).strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")

    @staticmethod
    def lang(request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE, "fr")
        return chosen if chosen in LANGUAGES else "fr"

    def context(self, request: Request, session: StaffSession | None) -> dict[str, Any]:
        lang = self.lang(request)
        t = translator(lang)
        return {
            "lang": lang,
            "t": t,
            "session": session,
            "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "service_title": t("service"),
            "service_tagline": t("tagline"),
            "home_url": "/consultations",
            "profile_name": lambda profile: profile_label(profile, lang),
            "as_is": str,
        }

    def render(
        self,
        request: Request,
        name: str,
        session: StaffSession | None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **values: Any,
    ) -> HTMLResponse:
        return render_page(self.templates, name, status, headers, **(self.context(request, session) | values))

    def fragment(self, request: Request, name: str, session: StaffSession, **values: Any) -> str:
        return self.templates.get_template(name).render(**(self.context(request, session) | values))


class Guard:
    """Who may see a page, and whether a posted form comes from this workspace."""

    def __init__(self, auth: StaffAuth, pages: Pages) -> None:
        self._auth = auth
        self._pages = pages

    async def staff(self, request: Request) -> StaffSession:
        session = await self._auth.session(request.cookies.get(SESSION_COOKIE), utc_now())
        if session is None:
            raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return session

    async def form(self, request: Request, session: StaffSession) -> dict[str, str]:
        """The posted form, once its CSRF token matches the session's."""
        form = await request.form()
        fields = {key: str(value) for key, value in form.items()}
        if not same_secret(fields.get("csrf_token"), session.csrf):
            raise PageError(403, "forbidden_title", translator(self._pages.lang(request))("forbidden_csrf"))
        return fields


def install_page_handlers(app: FastAPI, pages: Pages) -> None:
    async def sign_in_first(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInRequired)
        return RedirectResponse("/connexion?" + urlencode({"suite": error.next_path}), status_code=303)

    async def page_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, PageError)
        return pages.render(request, "message.html", None, error.status, title_key=error.title_key, detail=error.detail)

    async def not_found(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if request.url.path.startswith(("/v1/", "/static/")) or error.status_code != 404:
            detail = str(error.detail) if error.detail else None
            return problem(error.status_code, HTTPStatus(error.status_code).phrase, detail, headers=error.headers)
        return pages.render(request, "message.html", None, 404, title_key="not_found")

    async def crash(request: Request, error: Exception) -> Response:
        if store_unavailable(error):
            return unavailable(request)
        logging.getLogger("backoffice").error("request failed", exc_info=error, extra={"path": request.url.path})
        if request.url.path.startswith("/v1/"):
            return problem(500, "Internal Server Error", "The error was logged.")
        return pages.render(request, "message.html", None, 500, title_key="unavailable")

    app.add_exception_handler(Exception, crash)
    app.add_exception_handler(SignInRequired, sign_in_first)
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(StarletteHTTPException, not_found)


def local_path(candidate: str | None, default: str = "/consultations") -> str:
    """Only a path of this site, so a link cannot send staff elsewhere after sign-in."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return default


def workspace_router(ports: Ports, pages: Pages, guard: Guard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    settings = ports.settings
    staff_of, form_of = guard.staff, guard.form

    async def audit(session: StaffSession, action: str, target: str, detail: str = "") -> None:
        await ports.staff.audit(utc_now(), session.username, action, target, detail)
        ports.metrics.actions.labels(action).inc()

    def consultation_or_404(request: Request, consultation_id: str) -> ConsultationDefined:
        consultation = ports.consultations.get(consultation_id)
        if consultation is None:
            raise PageError(404, "not_found", translator(pages.lang(request))("unknown_consultation"))
        return consultation

    # --- sign-in -------------------------------------------------------------------------------------

    def signin_page(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
        token = request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        answer = pages.render(
            request,
            "signin.html",
            None,
            status,
            csrf=token,
            error=error,
            suite=local_path(request.query_params.get("suite")),
            username=request.query_params.get("username", ""),
        )
        answer.set_cookie(
            SIGNIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
            path="/connexion",
        )
        return answer

    @router.get("/connexion")
    async def signin_form(request: Request) -> Response:
        return signin_page(request)

    @router.post("/connexion")
    async def signin(request: Request) -> Response:
        form = await request.form()
        fields = {key: str(value) for key, value in form.items()}
        t = translator(pages.lang(request))
        expected = request.cookies.get(SIGNIN_CSRF_COOKIE)
        if expected is None or not same_secret(fields.get("csrf_token"), expected):
            raise PageError(403, "forbidden_title", t("forbidden_csrf"))
        name = fields.get("username", "").strip()[:100]
        client = request.client.host if request.client else "unknown"
        outcome = await ports.auth.sign_in(name, fields.get("password", ""), client, utc_now())
        if isinstance(outcome, Refused):
            ports.metrics.signins.labels("refused").inc()
            await ports.staff.audit(utc_now(), name or "?", "signin.refused", client)
            return signin_page(request, 401, t("signin_refused"))
        if not isinstance(outcome, SignedIn):
            ports.metrics.signins.labels("throttled").inc()
            wait = max(1, math.ceil((outcome.until - utc_now()).total_seconds()))
            throttled = signin_page(request, 429, t("signin_throttled", until=pages.local(outcome.until)))
            throttled.headers["Retry-After"] = str(wait)
            return throttled
        ports.metrics.signins.labels("ok").inc()
        await audit(outcome.session, "signed_in", outcome.session.username)
        answer = RedirectResponse(local_path(fields.get("suite")), status_code=303)
        answer.set_cookie(
            SESSION_COOKIE,
            outcome.token,
            max_age=int(settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies,
        )
        answer.delete_cookie(SIGNIN_CSRF_COOKIE, path="/connexion")
        return answer

    @router.post("/deconnexion")
    async def sign_out(request: Request) -> Response:
        session = await staff_of(request)
        await form_of(request, session)
        await ports.auth.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        await audit(session, "signed_out", session.username)
        answer = RedirectResponse("/connexion", status_code=303)
        answer.delete_cookie(SESSION_COOKIE)
        return answer

    @router.get("/langue/{code}")
    async def language(code: str, suite: str | None = None) -> Response:
        answer = RedirectResponse(local_path(suite), status_code=303)
        if code in LANGUAGES:
            answer.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=settings.secure_cookies)
        return answer

    # --- consultations -------------------------------------------------------------------------------

    @router.get("/")
    async def home() -> Response:
        return RedirectResponse("/consultations", status_code=303)

    @router.get("/consultations")
    async def consultation_list(request: Request, notice: str | None = None) -> Response:
        session = await staff_of(request)
        listed = sorted(ports.consultations.items.values(), key=lambda c: c.opens_at, reverse=True)
        states = await asyncio.gather(*(_results_or_none(ports.upstream, c.consultation_id) for c in listed))
        now = utc_now()
        rows = [
            {"consultation": c, "status": status_of(c, now, state is not None), "results": state}
            for c, state in zip(listed, states, strict=True)
        ]
        return pages.render(
            request, "consultations.html", session, rows=rows, notice=notice if notice in ("saved", "closed") else None
        )

    def definition_form(
        request: Request,
        session: StaffSession,
        consultation: ConsultationDefined | None,
        values: dict[str, str],
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        return pages.render(
            request,
            "consultation_form.html",
            session,
            status,
            consultation=consultation,
            values=values,
            errors=errors or {},
        )

    def values_of(consultation: ConsultationDefined) -> dict[str, str]:
        return {
            "consultation_id": consultation.consultation_id,
            "title": consultation.title,
            "description": consultation.description or "",
            "opens_at": consultation.opens_at.astimezone(pages.zone).strftime("%Y-%m-%dT%H:%M"),
            "closes_at": consultation.closes_at.astimezone(pages.zone).strftime("%Y-%m-%dT%H:%M"),
            "public_rankings": "yes" if consultation.public_rankings else "",
        }

    async def save_definition(
        request: Request, session: StaffSession, consultation: ConsultationDefined | None
    ) -> Response:
        fields = await form_of(request, session)
        values = {
            key: fields.get(key, "").strip()
            for key in ("consultation_id", "title", "description", "opens_at", "closes_at")
        }
        values["public_rankings"] = "yes" if fields.get("public_rankings") == "yes" else ""
        if consultation is not None:
            values["consultation_id"] = consultation.consultation_id
        errors = _definition_errors(values, pages.zone, pages.lang(request))
        if not errors:
            definition = {
                "title": values["title"],
                "description": values["description"] or None,
                "opens_at": local_datetime(values["opens_at"], pages.zone).isoformat(),
                "closes_at": local_datetime(values["closes_at"], pages.zone).isoformat(),
                "public_rankings": values["public_rankings"] == "yes",
            }
            try:
                defined = await ports.upstream.define_consultation(values["consultation_id"], definition)
                ports.consultations.put(defined.consultation_id, defined)  # before it comes back from Kafka
            except UpstreamError as error:
                errors = {e["pointer"].strip("/") or "form": e["detail"] for e in error.errors} or {
                    "form": error.detail
                }
        if errors:
            return definition_form(request, session, consultation, values, errors, 422)
        action = "consultation.edit" if consultation else "consultation.create"
        await audit(
            session,
            action,
            values["consultation_id"],
            f"{values['title']} ({values['opens_at']} → {values['closes_at']})",
        )
        return RedirectResponse("/consultations?notice=saved", status_code=303)

    @router.get("/consultations/nouvelle")
    async def new_consultation(request: Request) -> Response:
        session = await staff_of(request)
        start = utc_now().astimezone(pages.zone).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        values = {
            "consultation_id": "",
            "title": "",
            "description": "",
            "opens_at": start.strftime("%Y-%m-%dT%H:%M"),
            "closes_at": (start + timedelta(days=61)).strftime("%Y-%m-%dT%H:%M"),
            "public_rankings": "",
        }
        return definition_form(request, session, None, values)

    @router.post("/consultations/nouvelle")
    async def create_consultation(request: Request) -> Response:
        session = await staff_of(request)
        return await save_definition(request, session, None)

    @router.get("/consultations/{consultation_id}/modifier")
    async def edit_consultation(request: Request, consultation_id: str) -> Response:
        session = await staff_of(request)
        consultation = consultation_or_404(request, consultation_id)
        return definition_form(request, session, consultation, values_of(consultation))

    @router.post("/consultations/{consultation_id}/modifier")
    async def save_consultation(request: Request, consultation_id: str) -> Response:
        session = await staff_of(request)
        return await save_definition(request, session, consultation_or_404(request, consultation_id))

    @router.get("/consultations/{consultation_id}/cloture")
    async def close_form(request: Request, consultation_id: str) -> Response:
        session = await staff_of(request)
        consultation = consultation_or_404(request, consultation_id)
        return pages.render(request, "close.html", session, consultation=consultation, error=None)

    @router.post("/consultations/{consultation_id}/cloture")
    async def close_consultation(request: Request, consultation_id: str) -> Response:
        session = await staff_of(request)
        consultation = consultation_or_404(request, consultation_id)
        await form_of(request, session)
        try:
            closed = await ports.upstream.close_consultation(consultation_id)
            ports.consultations.put(consultation_id, closed)
        except UpstreamError as error:
            return pages.render(
                request,
                "close.html",
                session,
                409 if error.status == 409 else 503,
                consultation=consultation,
                error=error.detail,
            )
        await audit(session, "consultation.close", consultation_id, consultation.title)
        return RedirectResponse("/consultations?notice=closed", status_code=303)

    # --- live priorities -----------------------------------------------------------------------------

    async def live_view(consultation: ConsultationDefined, profile: str | None) -> dict[str, Any]:
        rankings = {}
        for kind in RANKING_KINDS:
            try:
                found = await ports.upstream.ranking(consultation.consultation_id, kind, profile, RANKING_LIMIT)
            except UpstreamError as error:
                if error.status != 404:
                    raise
                found = None
            rankings[kind] = found.page if found else {"items": [], "respondents": 0, "total": 0}
        return {"rankings": rankings, **(await participation(consultation))}

    async def participation(consultation: ConsultationDefined) -> dict[str, Any]:
        by_profile, first_days = await ports.contributions.participation(consultation.consultation_id)
        start = consultation.opens_at.astimezone(pages.zone).date()
        end = min(utc_now(), consultation.closes_at).astimezone(pages.zone).date()
        days = daily_series(first_days, start, max(start, end))
        return {
            "by_profile": [(p.value, by_profile.get(p.value, 0)) for p in Profile],
            "days": days,
            "respondents": sum(by_profile.values()),
            "profile_chart": bar_chart([(p.value, by_profile.get(p.value, 0)) for p in Profile]),
            "day_chart": bar_chart([(day, new) for day, new, _ in days[-31:]]),
        }

    def profile_param(request: Request) -> str | None:
        chosen = request.query_params.get("profil") or None
        return chosen if chosen in {p.value for p in Profile} else None

    @router.get("/consultations/{consultation_id}")
    async def priorities(request: Request, consultation_id: str) -> Response:
        session = await staff_of(request)
        consultation = consultation_or_404(request, consultation_id)
        profile = profile_param(request)
        try:
            view = await live_view(consultation, profile)
        except UpstreamError as error:
            raise PageError(503, "unavailable", error.detail) from None
        stream = f"/consultations/{consultation_id}/flux" + (f"?{urlencode({'profil': profile})}" if profile else "")
        return pages.render(
            request,
            "priorities.html",
            session,
            consultation=consultation,
            profile=profile,
            stream_url=stream,
            updated=pages.local(utc_now()),
            **view,
        )

    @router.get("/consultations/{consultation_id}/flux")
    async def live_updates(request: Request, consultation_id: str) -> StreamingResponse:
        """Server-Sent Events: the rankings and participation, rendered, each time they change."""
        session = await staff_of(request)
        consultation = consultation_or_404(request, consultation_id)
        profile = profile_param(request)

        async def events() -> AsyncIterator[bytes]:
            etags: dict[str, str | None] = dict.fromkeys(RANKING_KINDS)
            shown: dict[str, Any] = {}
            signature: object = None
            quiet = 0.0
            while not ports.stopping.is_set() and not await request.is_disconnected():
                try:
                    for kind in RANKING_KINDS:
                        found = await ports.upstream.ranking(consultation_id, kind, profile, RANKING_LIMIT, etags[kind])
                        if found is not None:
                            etags[kind], shown[kind] = found.etag, found.page
                    counts = await participation(consultation)
                except UpstreamError:
                    counts = None
                if counts is not None and len(shown) == len(RANKING_KINDS):
                    now_signature = (tuple(etags.values()), counts["respondents"], tuple(counts["days"]))
                    if now_signature != signature:
                        signature = now_signature
                        html = pages.fragment(
                            request,
                            "_live.html",
                            session,
                            consultation=consultation,
                            rankings=shown,
                            updated=pages.local(utc_now()),
                            **counts,
                        )
                        data = "".join(f"data: {line}\n" for line in html.splitlines())
                        yield f"event: update\n{data}\n".encode()
                        quiet = 0.0
                if quiet > 15:
                    yield b": still here\n\n"
                    quiet = 0.0
                await asyncio.sleep(settings.live_poll_s)
                quiet += settings.live_poll_s

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    # --- what respondents wrote ----------------------------------------------------------------------

    def text_filter(request: Request, consultation_id: str, kind: TextKind) -> TextFilter:
        query = request.query_params
        improvement = query.get("type") or None
        return TextFilter(
            consultation_id,
            kind,
            words=normalise(query.get("q", ""))[:200],
            profile=profile_param(request),
            improvement=improvement if improvement in {k.value for k in ImprovementKind} else None,
            dataset_id=(query.get("jeu") or None) if kind is TextKind.IMPROVEMENT else None,
        )

    @router.get("/consultations/{consultation_id}/contributions")
    async def contributions_home(consultation_id: str) -> Response:
        return RedirectResponse(f"/consultations/{consultation_id}/contributions/ameliorations", status_code=303)

    @router.get("/consultations/{consultation_id}/contributions/{view}")
    async def contributions(request: Request, consultation_id: str, view: str) -> Response:
        session = await staff_of(request)
        consultation = consultation_or_404(request, consultation_id)
        if view.endswith(".csv") and view[:-4] in VIEWS:
            return await export(request, session, consultation, view[:-4])
        if view not in VIEWS:
            raise PageError(404, "not_found")
        kind = VIEWS[view]
        which = text_filter(request, consultation_id, kind)
        page = max(1, _int(request.query_params.get("page"), 1))
        skip = (page - 1) * settings.page_size
        values: dict[str, Any] = {}
        if kind is TextKind.SUGGESTION:
            values["groups"], total = await ports.contributions.suggestion_groups(which, skip, settings.page_size)
        else:
            values["texts"], total = await ports.contributions.texts(which, skip, settings.page_size)
        if kind is TextKind.PLATFORM:
            levels = await ports.contributions.satisfaction(consultation_id)
            answered = sum(levels.values())
            values["levels"] = levels
            values["level_chart"] = bar_chart([(str(level), n) for level, n in levels.items()])
            values["average"] = (sum(level * n for level, n in levels.items()) / answered) if answered else None
            values["answered"] = answered
        if kind is TextKind.IMPROVEMENT:
            values["datasets"] = await ports.contributions.improved_datasets(consultation_id)
        params = {k: v for k, v in request.query_params.items() if k != "page" and v}
        return pages.render(
            request,
            "contributions.html",
            session,
            consultation=consultation,
            view=view,
            kind=kind.value,
            filters=params,
            total=total,
            page=page,
            pages=max(1, math.ceil(total / settings.page_size)),
            page_url=lambda n: f"?{urlencode(params | {'page': n})}",
            csv_url=f"/consultations/{consultation_id}/contributions/{view}.csv"
            + (f"?{urlencode(params)}" if params else ""),
            **values,
        )

    async def export(request: Request, session: StaffSession, consultation: ConsultationDefined, view: str) -> Response:
        kind = VIEWS[view]
        which = text_filter(request, consultation.consultation_id, kind)
        columns = EXPORT_COLUMNS[kind]
        await audit(session, "texts.export", consultation.consultation_id, f"{view} {dict(request.query_params)}")

        async def rows() -> AsyncIterator[bytes]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            async for doc in ports.contributions.all_texts(which):
                writer.writerow([spreadsheet_safe(_cell(doc.get(column))) for column in columns])
                if buffer.tell() > 64_000:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode()

        name = f"{consultation.consultation_id}-{view}.csv"
        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    # --- audit log -----------------------------------------------------------------------------------

    @router.get("/journal")
    async def journal(request: Request) -> Response:
        session = await staff_of(request)
        page = max(1, _int(request.query_params.get("page"), 1))
        entries, total = await ports.staff.audit_entries((page - 1) * 50, 50)
        return pages.render(
            request,
            "journal.html",
            session,
            entries=entries,
            page=page,
            pages=max(1, math.ceil(total / 50)),
            page_url=lambda n: f"?{urlencode({'page': n})}",
        )

    return router


EXPORT_COLUMNS = {
    TextKind.IMPROVEMENT: ["day", "profile", "dataset_id", "dataset_title", "kinds", "comment"],
    TextKind.SUGGESTION: ["day", "profile", "group_key", "group_title", "title", "description", "holder"],
    TextKind.PLATFORM: ["day", "profile", "satisfaction", "comment"],
}


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


async def _results_or_none(upstream: Upstream, consultation_id: str) -> Any:
    try:
        return await upstream.results(consultation_id)
    except UpstreamError:
        return None


def _definition_errors(values: dict[str, str], zone: ZoneInfo, lang: str) -> dict[str, str]:
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

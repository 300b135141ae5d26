"""The workspace's pages: server-rendered, French first, usable without JavaScript."""

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.backoffice.auth import SESSION_COOKIE, StaffAuth, same_secret
from services.backoffice.commitments import Commitments
from services.backoffice.exclusions import Exclusions
from services.backoffice.handlers import BackofficeMetrics
from services.backoffice.i18n import LANGUAGES, improvement_label, profile_label, translator
from services.backoffice.repository import ContributionRepository, StaffRepository, StaffSession
from services.backoffice.settings import BackofficeSettings
from services.backoffice.upstream import Upstream
from shared.contracts import ConsultationDefined, ImprovementKind, Priority, Profile, utc_now
from shared.http import http_problem, problem, store_unavailable, unavailable
from shared.kafka import StateView
from shared.web import page_templates, render_page

HERE = Path(__file__).resolve().parent
LANG_COOKIE = "cod_lang"


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
    commitments: Commitments
    exclusions: Exclusions


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
            return http_problem(request, error)
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


class PageGroup:
    """A group of pages: what each needs to check who asks, render, and write the audit log."""

    def __init__(self, ports: Ports, pages: Pages, guard: Guard) -> None:
        self.ports = ports
        self.pages = pages
        self.guard = guard
        self.settings = ports.settings

    async def audit(self, session: StaffSession, action: str, target: str, detail: str = "") -> None:
        await self.ports.staff.audit(utc_now(), session.username, action, target, detail)
        self.ports.metrics.action(action)

    def consultation_or_404(self, request: Request, consultation_id: str) -> ConsultationDefined:
        consultation = self.ports.consultations.get(consultation_id)
        if consultation is None:
            raise PageError(404, "not_found", translator(self.pages.lang(request))("unknown_consultation"))
        return consultation

    @staticmethod
    def profile_param(request: Request) -> str | None:
        chosen = request.query_params.get("profil") or None
        return chosen if chosen in {p.value for p in Profile} else None


def page_number(request: Request) -> int:
    """The `page` asked for; the first for anything that is not a positive number."""
    text = request.query_params.get("page", "")
    return max(1, int(text)) if text.isascii() and text.isdigit() else 1


def local_path(candidate: str | None, default: str = "/consultations") -> str:
    """Only a path of this site, so a link cannot send staff elsewhere after sign-in."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return default

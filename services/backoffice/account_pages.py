"""Sign-in, sign-out, the language, and the audit log."""

import math
import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.backoffice.auth import SESSION_COOKIE, SIGNIN_CSRF_COOKIE, Refused, SignedIn, same_secret
from services.backoffice.i18n import LANGUAGES, translator
from services.backoffice.web import LANG_COOKIE, PageError, PageGroup, local_path, page_number
from shared.contracts import utc_now
from shared.edge import client_of

AUDIT_PAGE = 50


class AccountPages(PageGroup):
    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/", self.home, methods=["GET"])
        router.add_api_route("/connexion", self.signin_form, methods=["GET"])
        router.add_api_route("/connexion", self.sign_in, methods=["POST"])
        router.add_api_route("/deconnexion", self.sign_out, methods=["POST"])
        router.add_api_route("/langue/{code}", self.language, methods=["GET"])
        router.add_api_route("/journal", self.journal, methods=["GET"])
        return router

    async def home(self) -> Response:
        return RedirectResponse("/consultations", status_code=303)

    def signin_page(self, request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
        token = request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        answer = self.pages.render(
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
            secure=self.settings.secure_cookies,
            path="/connexion",
        )
        return answer

    async def signin_form(self, request: Request) -> Response:
        return self.signin_page(request)

    async def sign_in(self, request: Request) -> Response:
        fields = {key: str(value) for key, value in (await request.form()).items()}
        t = translator(self.pages.lang(request))
        expected = request.cookies.get(SIGNIN_CSRF_COOKIE)
        if expected is None or not same_secret(fields.get("csrf_token"), expected):
            raise PageError(403, "forbidden_title", t("forbidden_csrf"))
        name = fields.get("username", "").strip()[:100]
        client = client_of(request.scope, self.settings.trusted_proxies)
        outcome = await self.ports.auth.sign_in(name, fields.get("password", ""), client, utc_now())
        if isinstance(outcome, Refused):
            self.ports.metrics.signins.labels("refused").inc()
            await self.ports.staff.audit(utc_now(), name or "?", "signin.refused", client)
            return self.signin_page(request, 401, t("signin_refused"))
        if not isinstance(outcome, SignedIn):
            self.ports.metrics.signins.labels("throttled").inc()
            wait = max(1, math.ceil((outcome.until - utc_now()).total_seconds()))
            throttled = self.signin_page(request, 429, t("signin_throttled", until=self.pages.local(outcome.until)))
            throttled.headers["Retry-After"] = str(wait)
            return throttled
        self.ports.metrics.signins.labels("ok").inc()
        await self.audit(outcome.session, "signed_in", outcome.session.username)
        answer = RedirectResponse(local_path(fields.get("suite")), status_code=303)
        answer.set_cookie(
            SESSION_COOKIE,
            outcome.token,
            max_age=int(self.settings.session_hours * 3600),
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )
        answer.delete_cookie(SIGNIN_CSRF_COOKIE, path="/connexion")
        return answer

    async def sign_out(self, request: Request) -> Response:
        session = await self.guard.staff(request)
        await self.guard.form(request, session)
        await self.ports.auth.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        await self.audit(session, "signed_out", session.username)
        answer = RedirectResponse("/connexion", status_code=303)
        answer.delete_cookie(SESSION_COOKIE)
        return answer

    async def language(self, code: str, suite: str | None = None) -> Response:
        answer = RedirectResponse(local_path(suite), status_code=303)
        if code in LANGUAGES:
            secure = self.settings.secure_cookies
            answer.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", secure=secure)
        return answer

    async def journal(self, request: Request) -> Response:
        session = await self.guard.staff(request)
        page = page_number(request)
        entries, total = await self.ports.staff.audit_entries((page - 1) * AUDIT_PAGE, AUDIT_PAGE)
        return self.pages.render(
            request,
            "journal.html",
            session,
            entries=entries,
            page=page,
            pages=max(1, math.ceil(total / AUDIT_PAGE)),
            page_url=lambda n: f"?{urlencode({'page': n})}",
        )

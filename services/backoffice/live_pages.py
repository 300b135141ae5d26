"""Live priorities: the three rankings from scoring and the participation, updated over Server-Sent Events."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.backoffice.domain import bar_chart, daily_series
from services.backoffice.repository import StaffSession
from services.backoffice.upstream import UpstreamError
from services.backoffice.web import PageError, PageGroup
from shared.contracts import ConsultationDefined, Profile, utc_now

RANKING_KINDS = ("open", "improve", "suggestions")
RANKING_LIMIT = 50
HEARTBEAT_S = 15.0


class LivePages(PageGroup):
    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/consultations/{consultation_id}", self.priorities, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}/flux", self.updates, methods=["GET"])
        return router

    async def priorities(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        profile = self.profile_param(request)
        try:
            view = await self._rankings(consultation, profile)
        except UpstreamError as error:
            raise PageError(503, "unavailable", error.detail) from None
        stream = f"/consultations/{consultation_id}/flux" + (f"?{urlencode({'profil': profile})}" if profile else "")
        return self.pages.render(
            request,
            "priorities.html",
            session,
            consultation=consultation,
            profile=profile,
            stream_url=stream,
            updated=self.pages.local(utc_now()),
            rankings=view,
            **(await self.participation(consultation)),
        )

    async def _rankings(self, consultation: ConsultationDefined, profile: str | None) -> dict[str, Any]:
        rankings = {}
        for kind in RANKING_KINDS:
            try:
                found = await self.ports.upstream.ranking(consultation.consultation_id, kind, profile, RANKING_LIMIT)
            except UpstreamError as error:
                if error.status != 404:
                    raise
                found = None
            rankings[kind] = found.page if found else {"items": [], "respondents": 0, "total": 0}
        return rankings

    async def participation(self, consultation: ConsultationDefined) -> dict[str, Any]:
        """Respondents by profile and new respondents by day, as figures and as charts."""
        by_profile, first_days = await self.ports.contributions.participation(consultation.consultation_id)
        start = consultation.opens_at.astimezone(self.pages.zone).date()
        end = min(utc_now(), consultation.closes_at).astimezone(self.pages.zone).date()
        days = daily_series(first_days, start, max(start, end))
        profiles = [(p.value, by_profile.get(p.value, 0)) for p in Profile]
        return {
            "by_profile": profiles,
            "days": days,
            "respondents": sum(by_profile.values()),
            "profile_chart": bar_chart(profiles),
            "day_chart": bar_chart([(day, new) for day, new, _ in days[-31:]]),
        }

    async def updates(self, request: Request, consultation_id: str) -> StreamingResponse:
        """Server-Sent Events: the rankings and participation, rendered, each time they change."""
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        events = LiveFeed(self, request, session, consultation, self.profile_param(request)).events()
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)


class LiveFeed:
    """One staff page's feed: it asks scoring with `If-None-Match` and sends a fragment on any change."""

    def __init__(
        self,
        pages: LivePages,
        request: Request,
        session: StaffSession,
        consultation: ConsultationDefined,
        profile: str | None,
    ) -> None:
        self._pages = pages
        self._request = request
        self._session = session
        self._consultation = consultation
        self._profile = profile
        self._etags: dict[str, str | None] = dict.fromkeys(RANKING_KINDS)
        self._shown: dict[str, Any] = {}

    async def _changed(self, signature: object) -> tuple[object, str | None]:
        """The new signature, and the fragment to send if anything moved."""
        upstream = self._pages.ports.upstream
        cid = self._consultation.consultation_id
        try:
            for kind in RANKING_KINDS:
                found = await upstream.ranking(cid, kind, self._profile, RANKING_LIMIT, self._etags[kind])
                if found is not None:
                    self._etags[kind], self._shown[kind] = found.etag, found.page
            counts = await self._pages.participation(self._consultation)
        except UpstreamError:
            return signature, None
        now = (tuple(self._etags.values()), counts["respondents"], tuple(counts["days"]))
        if len(self._shown) < len(RANKING_KINDS) or now == signature:
            return signature, None
        html = self._pages.pages.fragment(
            self._request,
            "_live.html",
            self._session,
            consultation=self._consultation,
            rankings=self._shown,
            updated=self._pages.pages.local(utc_now()),
            **counts,
        )
        return now, html

    async def events(self) -> AsyncIterator[bytes]:
        signature: object = None
        quiet = 0.0
        poll_s = self._pages.settings.live_poll_s
        while not self._pages.ports.stopping.is_set() and not await self._request.is_disconnected():
            signature, html = await self._changed(signature)
            if html is not None:
                data = "".join(f"data: {line}\n" for line in html.splitlines())
                yield f"event: update\n{data}\n".encode()
                quiet = 0.0
            elif quiet > HEARTBEAT_S:
                yield b": still here\n\n"
                quiet = 0.0
            await asyncio.sleep(poll_s)
            quiet += poll_s

"""The public follow-up of a consultation's commitments: an HTML page in the State design system
(French first, no JavaScript needed) and its Atom feed, under the same embargo as the results."""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import HTMLResponse

from services.publisher.archive import FollowUp
from services.publisher.feed import atom_feed
from services.publisher.publications import Embargoed, NotPublished, Publications
from services.publisher.report import KIND_LABELS, STATUS_LABELS, web_url
from shared.contracts import CommitmentStatus, ResultsPublished
from shared.http import problem
from shared.web import page_templates, render_page

HERE = Path(__file__).resolve().parent
SERVICE_TITLE = "Consultation des réutilisateurs de données"
SERVICE_TAGLINE = "Ministère de la Culture — résultats et engagements"
PARIS = ZoneInfo("Europe/Paris")
ATOM_TYPE = "application/atom+xml; charset=utf-8"
BADGES = {
    CommitmentStatus.PLANNED: "fr-badge--info",
    CommitmentStatus.IN_PROGRESS: "fr-badge--new",
    CommitmentStatus.DONE: "fr-badge--success",
    CommitmentStatus.DROPPED: "fr-badge--warning",
}


def paris_day(instant: datetime) -> str:
    return instant.astimezone(PARIS).strftime("%d/%m/%Y")


def follow_up_router(publications: Publications, follow_up: Callable[[ResultsPublished], FollowUp]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = page_templates(HERE / "templates")
    templates.filters["web_url"] = web_url
    templates.filters["paris_day"] = paris_day

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render_page(
            templates, name, status, service_title=SERVICE_TITLE, service_tagline=SERVICE_TAGLINE, **context
        )

    def refused(error: NotPublished | Embargoed) -> HTMLResponse:
        if isinstance(error, Embargoed):
            return page(
                "message.html",
                403,
                title="Pas encore public / Not public yet",
                detail=f"Les résultats et les engagements seront publics le {paris_day(error.public_from)} "
                f"({error.public_from.astimezone(PARIS):%H:%M}, heure de Paris).",
                detail_en=f"The results and commitments are public from {error.public_from.isoformat()}.",
            )
        return page(
            "message.html",
            404,
            title="Introuvable / Not found",
            detail="Cette consultation n'existe pas ou ses résultats ne sont pas encore publiés."
            if error.known
            else "Cette consultation n'existe pas.",
            detail_en=str(error),
        )

    @router.get("/consultations/{consultation_id}/suivi", response_class=HTMLResponse)
    async def follow_up_page(
        consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> HTMLResponse:
        try:
            found = await publications.visible(consultation_id, authorization)
        except (NotPublished, Embargoed) as error:
            return refused(error)
        published = await publications.published(found)
        return page(
            "suivi.html",
            results=published,
            follow_up=follow_up(published),
            kind_labels=KIND_LABELS,
            status_labels=STATUS_LABELS,
            badges=BADGES,
            done=CommitmentStatus.DONE,
            dropped=CommitmentStatus.DROPPED,
        )

    @router.get("/consultations/{consultation_id}/suivi.atom")
    async def follow_up_feed(
        consultation_id: str, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        try:
            found = await publications.visible(consultation_id, authorization)
        except NotPublished as error:
            return problem(404, "Not Found", str(error))
        except Embargoed as error:
            return problem(
                403,
                "Embargoed",
                f"Les engagements seront publics le {paris_day(error.public_from)}. "
                f"The commitments are public from {error.public_from.isoformat()}.",
                public_from=error.public_from.isoformat(),
            )
        feed_url = str(request.url.replace(query=""))
        published = await publications.published(found)
        body = atom_feed(published, follow_up(published), feed_url.removesuffix(".atom"), feed_url)
        return Response(body, media_type=ATOM_TYPE, headers={"Cache-Control": "no-cache"})

    return router

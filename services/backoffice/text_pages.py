"""What respondents wrote: improvement comments, suggestions, platform feedback; searched, filtered,
paged and exported as CSV."""

import csv
import io
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from services.backoffice.domain import TextKind, bar_chart, normalise, spreadsheet_safe
from services.backoffice.repository import StaffSession, TextFilter
from services.backoffice.web import PageError, PageGroup, page_number
from shared.contracts import ConsultationDefined, ImprovementKind

VIEWS = {"ameliorations": TextKind.IMPROVEMENT, "suggestions": TextKind.SUGGESTION, "plateforme": TextKind.PLATFORM}
EXPORT_COLUMNS = {
    TextKind.IMPROVEMENT: ["day", "profile", "dataset_id", "dataset_title", "kinds", "comment"],
    TextKind.SUGGESTION: ["day", "profile", "group_key", "group_title", "title", "description", "holder"],
    TextKind.PLATFORM: ["day", "profile", "satisfaction", "comment"],
}


class TextPages(PageGroup):
    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/consultations/{consultation_id}/contributions", self.home, methods=["GET"])
        router.add_api_route("/consultations/{consultation_id}/contributions/{view}", self.view, methods=["GET"])
        return router

    async def home(self, consultation_id: str) -> Response:
        return RedirectResponse(f"/consultations/{consultation_id}/contributions/ameliorations", status_code=303)

    def which(self, request: Request, consultation_id: str, kind: TextKind) -> TextFilter:
        query = request.query_params
        improvement = query.get("type") or None
        return TextFilter(
            consultation_id,
            kind,
            words=normalise(query.get("q", ""))[:200],
            profile=self.profile_param(request),
            improvement=improvement if improvement in {k.value for k in ImprovementKind} else None,
            dataset_id=(query.get("jeu") or None) if kind is TextKind.IMPROVEMENT else None,
        )

    async def view(self, request: Request, consultation_id: str, view: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        if view.endswith(".csv") and view[:-4] in VIEWS:
            return await self.export(request, session, consultation, view[:-4])
        if view not in VIEWS:
            raise PageError(404, "not_found")
        kind = VIEWS[view]
        page = page_number(request)
        values, total = await self._found(self.which(request, consultation_id, kind), page)
        params = {k: v for k, v in request.query_params.items() if k != "page" and v}
        return self.pages.render(
            request,
            "contributions.html",
            session,
            consultation=consultation,
            view=view,
            kind=kind.value,
            filters=params,
            total=total,
            page=page,
            pages=max(1, math.ceil(total / self.settings.page_size)),
            page_url=lambda n: f"?{urlencode(params | {'page': n})}",
            csv_url=f"/consultations/{consultation_id}/contributions/{view}.csv?{urlencode(params)}",
            **values,
        )

    async def _found(self, which: TextFilter, page: int) -> tuple[dict[str, Any], int]:
        """The page of texts (or of suggestion groups), with what the view shows beside them."""
        contributions = self.ports.contributions
        skip, size = (page - 1) * self.settings.page_size, self.settings.page_size
        values: dict[str, Any] = {}
        if which.kind is TextKind.SUGGESTION:
            values["groups"], total = await contributions.suggestion_groups(which, skip, size)
        else:
            values["texts"], total = await contributions.texts(which, skip, size)
        if which.kind is TextKind.PLATFORM:
            levels = await contributions.satisfaction(which.consultation_id)
            answered = sum(levels.values())
            values |= {
                "levels": levels,
                "level_chart": bar_chart([(str(level), n) for level, n in levels.items()]),
                "average": (sum(level * n for level, n in levels.items()) / answered) if answered else None,
                "answered": answered,
            }
        if which.kind is TextKind.IMPROVEMENT:
            values["datasets"] = await contributions.improved_datasets(which.consultation_id)
        return values, total

    async def export(
        self, request: Request, session: StaffSession, consultation: ConsultationDefined, view: str
    ) -> Response:
        kind = VIEWS[view]
        which = self.which(request, consultation.consultation_id, kind)
        columns = EXPORT_COLUMNS[kind]
        await self.audit(session, "texts.export", consultation.consultation_id, f"{view} {dict(request.query_params)}")

        async def rows() -> AsyncIterator[bytes]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            async for doc in self.ports.contributions.all_texts(which):
                writer.writerow([spreadsheet_safe(_cell(doc.get(column))) for column in columns])
                if buffer.tell() > 64_000:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue().encode()

        name = f"{consultation.consultation_id}-{view}.csv"
        headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)

"""Pages and API of stuffing detection: the flagged clusters of a consultation, and staff's decision to
exclude each one from the filtered rankings or to clear it, with a public reason."""

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.backoffice.exclusions import ClustersPage, DecisionRefused, Exclusions
from services.backoffice.i18n import translator
from services.backoffice.settings import BackofficeSettings
from services.backoffice.web import PageError, PageGroup
from shared.contracts import ConsultationDefined, Decision
from shared.http import ProblemError, administrators, problem_responses, require_admin
from shared.kafka import StateView

CLUSTER_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
NOT_RECORDED = "Kafka n'a pas pris la décision : rien n'a changé / Kafka did not take the decision: nothing changed."


class ClusterPages(PageGroup):
    @property
    def exclusions(self) -> Exclusions:
        return self.ports.exclusions

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        base = "/consultations/{consultation_id}/grappes"
        router.add_api_route(base, self.listed, methods=["GET"])
        router.add_api_route(f"{base}/{{cluster_id}}", self.detail, methods=["GET"])
        router.add_api_route(f"{base}/{{cluster_id}}/decision", self.decide, methods=["POST"])
        return router

    async def listed(self, request: Request, consultation_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        notice = request.query_params.get("decision")
        return self.pages.render(
            request,
            "clusters.html",
            session,
            consultation=consultation,
            page=await self.exclusions.page(consultation_id),
            notice=notice if notice in ("exclude", "clear") else None,
        )

    async def detail(self, request: Request, consultation_id: str, cluster_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        page = await self.exclusions.page(consultation_id)
        cluster = next((c for c in page.clusters if c.cluster_id == cluster_id), None)
        if cluster is None:
            raise PageError(404, "not_found", translator(self.pages.lang(request))("unknown_cluster"))
        return self.pages.render(
            request, "cluster.html", session, consultation=consultation, page=page, cluster=cluster, error=None
        )

    async def decide(self, request: Request, consultation_id: str, cluster_id: str) -> Response:
        session = await self.guard.staff(request)
        consultation = self.consultation_or_404(request, consultation_id)
        form = await self.guard.form(request, session)
        try:
            decision = Decision(form.get("decision", ""))
        except ValueError:
            raise PageError(422, "invalid_form", translator(self.pages.lang(request))("unknown_decision")) from None
        try:
            await self.exclusions.decide(
                consultation_id, cluster_id, decision, form.get("reason", ""), session.username
            )
        except DecisionRefused as refused:
            if refused.status == 404:
                raise PageError(404, "not_found", refused.detail) from None
            page = await self.exclusions.page(consultation_id)
            cluster = next((c for c in page.clusters if c.cluster_id == cluster_id), None)
            if cluster is None:
                raise PageError(refused.status, "invalid_form", refused.detail) from None
            return self.pages.render(
                request,
                "cluster.html",
                session,
                refused.status,
                consultation=consultation,
                page=page,
                cluster=cluster,
                error=refused.detail,
                reason=form.get("reason", ""),
            )
        except Exception:
            logging.getLogger("backoffice").exception("decision not recorded", extra={"cluster": cluster_id})
            raise PageError(503, "unavailable", NOT_RECORDED) from None
        return RedirectResponse(
            f"/consultations/{consultation_id}/grappes?decision={decision.value}#cluster-{cluster_id}", status_code=303
        )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="Why, in French: published with the results (3 to 500 characters).")


class DecisionAnswer(BaseModel):
    """The decision as recorded (respondent keys left out)."""

    consultation_id: str
    cluster_id: str
    decision: Decision
    reason: str
    respondents: int = Field(description="Respondents the decision covers.")
    decided_at: datetime


def clusters_api(
    settings: BackofficeSettings, exclusions: Exclusions, consultations: StateView[ConsultationDefined]
) -> APIRouter:
    """The same for administrators' scripts, with their bearer token."""
    router = APIRouter(tags=["clusters"])
    admin_token = settings.admin_token.get_secret_value()

    @router.get("/v1/consultations/{consultation_id}/clusters", responses=problem_responses(401, 404, 503))
    async def list_clusters(
        consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> ClustersPage:
        """The clusters detection flags now, and those decided before, with staff's decisions."""
        require_admin(authorization, admin_token)
        if consultations.get(consultation_id) is None:
            raise ProblemError(404, "Not Found", f"No consultation {consultation_id!r}.")
        return await exclusions.page(consultation_id)

    def route(decision: Decision) -> None:
        async def decide(
            consultation_id: str, cluster_id: Annotated[str, Path(pattern=CLUSTER_ID)], body: DecisionBody
        ) -> DecisionAnswer:
            try:
                decided = await exclusions.decide(consultation_id, cluster_id, decision, body.reason, "api")
            except DecisionRefused as refused:
                title = {404: "Not Found", 409: "Conflict", 422: "Invalid request"}[refused.status]
                raise ProblemError(refused.status, title, refused.detail) from None
            except Exception:
                raise ProblemError(503, "Service Unavailable", NOT_RECORDED, headers={"Retry-After": "5"}) from None
            return DecisionAnswer(
                consultation_id=consultation_id,
                cluster_id=cluster_id,
                decision=decided.decision,
                reason=decided.reason,
                respondents=len(decided.respondent_keys),
                decided_at=decided.occurred_at,
            )

        decide.__doc__ = {
            Decision.EXCLUDE: "Set a flagged cluster aside: out of the filtered rankings, with a public reason.",
            Decision.CLEAR: "Keep a flagged cluster counted, with a reason.",
        }[decision]
        router.add_api_route(
            f"/v1/consultations/{{consultation_id}}/clusters/{{cluster_id}}/{decision.value}",
            decide,
            methods=["POST"],
            name=f"{decision.value}_cluster",
            responses=problem_responses(401, 404, 409, 422, 503),
            dependencies=[administrators(admin_token)],
        )

    for decision in Decision:
        route(decision)
    return router

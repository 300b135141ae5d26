"""The publisher's results API: the published results and their files, public from the publication
date (administrators at once), and the early release for administrators."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Response

from services.publisher.files import MEDIA_TYPES
from services.publisher.publications import Embargoed, NotPublished, Publications
from services.publisher.repository import Publication
from shared.contracts import ResultsPublished
from shared.http import ProblemError, problem_responses

__all__ = ["ResultsApi"]


@dataclass
class ResultsApi:
    """The routes of the results API, on the publications they read; each method is one operation."""

    publications: Publications

    def router(self) -> APIRouter:
        router = APIRouter()
        path = "/v1/consultations/{consultation_id}/results"
        embargo_responses = problem_responses(401, 403, 404, 503)
        for suffix, endpoint in (("", self.results), ("/files", self.files), ("/{name}", self.results_file)):
            router.add_api_route(
                path + suffix, endpoint, methods=["GET"], responses=embargo_responses, tags=["results"]
            )
        router.add_api_route(
            f"{path}/release",
            self.release,
            methods=["POST"],
            status_code=204,
            responses=problem_responses(401, 404, 503),
            tags=["results"],
        )
        return router

    async def publication(self, consultation_id: str, authorization: str | None) -> Publication:
        """The publication, if this caller may see it: administrators at once, the public from the
        publication date."""
        try:
            return await self.publications.visible(consultation_id, authorization)
        except NotPublished as error:
            raise HTTPException(404, str(error)) from None
        except Embargoed as error:
            public = error.public_from
            raise ProblemError(
                403,
                "Embargoed",
                f"Les résultats seront publics le {public:%d/%m/%Y à %H:%M} UTC. "
                f"The results are public from {public.isoformat()}.",
                extensions={"public_from": public.isoformat()},
            ) from None

    async def results(
        self, consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> ResultsPublished:
        """The results of a closed consultation as published (`resultats.json`: ranked from the public
        archive, small breakdown cells left out), public from the publication date. Administrators get
        the results frozen at the close, in full detail."""
        found = await self.publication(consultation_id, authorization)
        return await self.publications.results(found, authorization)

    async def files(
        self, consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        """The published files, with their size and SHA-256."""
        found = await self.publication(consultation_id, authorization)
        return {
            "consultation_id": consultation_id,
            "public_from": self.publications.public_from(found).isoformat(),
            "files": [
                {
                    "name": f.name,
                    "url": f"/v1/consultations/{consultation_id}/results/{f.name}",
                    "bytes": f.size,
                    "sha256": f.sha256,
                }
                for f in sorted(found.files.values(), key=lambda f: f.name)
            ],
        }

    async def results_file(
        self, consultation_id: str, name: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """One published file: rankings (CSV, JSON), data package, archive, method, report."""
        found = await self.publication(consultation_id, authorization)
        read = await self.publications.file(found, name)
        if read is None:
            raise HTTPException(404, f"No file {name!r}; see /v1/consultations/{consultation_id}/results/files.")
        stored, data = read
        media_type = MEDIA_TYPES.get(name[name.rfind(".") :], "application/octet-stream")
        return Response(data, media_type=media_type, headers={"ETag": f'"{stored.sha256[:32]}"'})

    async def release(self, consultation_id: str, authorization: Annotated[str | None, Header()] = None) -> Response:
        """Administrators: make the results public now, before the end of the embargo."""
        try:
            await self.publications.release(consultation_id, authorization)
        except NotPublished as error:
            raise HTTPException(404, str(error)) from None
        return Response(status_code=204)

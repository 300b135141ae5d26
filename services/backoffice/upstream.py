"""The other services' HTTP APIs, as the workspace calls them: as any client would, with the
administrators' bearer token. The workspace imports none of their code."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from services.backoffice.settings import BackofficeSettings
from shared.contracts import ConsultationDefined


class UpstreamError(Exception):
    """Another service refused or could not answer; `detail` says why, `errors` which fields."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


@dataclass(frozen=True)
class Ranking:
    etag: str | None
    page: dict[str, Any]


@dataclass(frozen=True)
class ResultsState:
    public_from: datetime


class Upstream:
    def __init__(self, settings: BackofficeSettings) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(
            timeout=settings.upstream_timeout_s,
            headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, url: str, **options: Any) -> httpx.Response:
        try:
            answer = await self._client.request(method, url, **options)
        except httpx.HTTPError as error:
            raise UpstreamError(503, f"{url.split('/v1/')[0]} unreachable: {type(error).__name__}") from error
        if answer.status_code >= 400 and answer.status_code != 404:
            try:
                body = answer.json()
            except ValueError:
                body = {}
            raise UpstreamError(answer.status_code, str(body.get("detail") or answer.reason_phrase), body.get("errors"))
        return answer

    async def define_consultation(self, consultation_id: str, definition: dict[str, Any]) -> ConsultationDefined:
        """Create or change a consultation through ingest, which publishes it to every service."""
        answer = await self._call(
            "PUT", f"{self._settings.ingest_url}/v1/consultations/{consultation_id}", json=definition
        )
        return ConsultationDefined.model_validate_json(answer.content)

    async def close_consultation(self, consultation_id: str) -> ConsultationDefined:
        answer = await self._call("POST", f"{self._settings.ingest_url}/v1/consultations/{consultation_id}/close")
        if answer.status_code == 404:
            raise UpstreamError(404, "no such consultation")
        return ConsultationDefined.model_validate_json(answer.content)

    async def ranking(
        self, consultation_id: str, kind: str, profile: str | None, limit: int, etag: str | None = None
    ) -> Ranking | None:
        """A live ranking from scoring; None when it has not changed since `etag`."""
        params: dict[str, str | int] = {"kind": kind, "limit": limit}
        if profile:
            params["profile"] = profile
        answer = await self._call(
            "GET",
            f"{self._settings.scoring_url}/v1/consultations/{consultation_id}/rankings",
            params=params,
            headers={"If-None-Match": etag} if etag else {},
        )
        if answer.status_code == 304:
            return None
        if answer.status_code == 404:
            raise UpstreamError(404, "scoring does not know this consultation yet")
        return Ranking(answer.headers.get("ETag"), answer.json())

    async def results(self, consultation_id: str) -> ResultsState | None:
        """Whether the publisher has emitted the results of a consultation, and from when they are public."""
        answer = await self._call(
            "GET", f"{self._settings.publisher_url}/v1/consultations/{consultation_id}/results/files"
        )
        if answer.status_code == 404:
            return None
        return ResultsState(datetime.fromisoformat(answer.json()["public_from"]))

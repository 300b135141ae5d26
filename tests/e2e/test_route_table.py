"""Every route of every service, walked from its OpenAPI document: without credentials, each answers
401, but the few that are public by design (and those answer no 401 and no 5xx)."""

import re

import httpx
import pytest

from tests.e2e.conftest import Pipeline

# Public by design: the questionnaire's API, the catalogue, the published results (embargoed until
# their public date, which is a 403 or 404, never a 401).
PUBLIC = {
    ("ingest", "get", "/v1/consultations/{consultation_id}"),
    ("ingest", "post", "/v1/consultations/{consultation_id}/responses"),
    ("ingest", "post", "/v1/consultations/{consultation_id}/withdrawal"),  # the respondent's token is the credential
    ("catalogue", "get", "/v1/datasets"),
    ("catalogue", "get", "/v1/datasets/{dataset_id}"),
    ("publisher", "get", "/v1/consultations/{consultation_id}/results"),
    ("publisher", "get", "/v1/consultations/{consultation_id}/results/files"),
    ("publisher", "get", "/v1/consultations/{consultation_id}/results/{name}"),
}
PARAMETER = re.compile(r"\{([^}]+)\}")


def concrete(path: str) -> str:
    """The path with a plausible value for each parameter (ids are lower case, as their patterns want)."""
    return PARAMETER.sub(lambda match: f"walk-{match.group(1).replace('_', '-')}", path)


@pytest.mark.parametrize("service", ["ingest", "catalogue", "scoring", "publisher", "backoffice"])
async def test_every_route_that_is_not_public_answers_401_without_credentials(pipeline: Pipeline, service: str) -> None:
    base = pipeline.url(service)
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        document = (await client.get("/openapi.json")).json()
        walked = []
        for path, operations in document["paths"].items():
            for method in operations:
                answer = await client.request(method.upper(), concrete(path), json={} if method != "get" else None)
                walked.append((method, path, answer.status_code))
                if (service, method, path) in PUBLIC:
                    assert answer.status_code not in (401, 500), (method, path, answer.text)
                else:
                    assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
                    assert answer.headers["www-authenticate"] == "Bearer"
    assert walked, f"{service} documents no route"

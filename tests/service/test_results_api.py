"""The publisher's results API through an ASGI client on an in-memory repository: the embargo (404 until
published, 403 with the public date until then, administrators at once), the published results and
files, and the early release."""

import hashlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.publisher.api import ResultsApi
from services.publisher.archive import Consultation, Method, results_of
from services.publisher.files import RESULTS_JSON, results_json
from services.publisher.publications import Publications
from services.publisher.repository import Publication, StoredFile
from services.scoring.domain import DEFAULT_WEIGHTS
from shared.contracts import RankingKind, ResultsPublished, utc_now
from shared.http import install_problem_handlers

TOKEN = "admin-token-for-the-results-api-tests"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CLOSED = utc_now() - timedelta(days=1)
RANKING = b"rank,key\r\n"


class InMemoryResults:
    """The publisher's `ResultsRepository`, in memory."""

    def __init__(self) -> None:
        self.stored: dict[str, tuple[ResultsPublished, dict[str, bytes]]] = {}
        self.released: dict[str, datetime] = {}

    async def get(self, consultation_id: str) -> Publication | None:
        if consultation_id not in self.stored:
            return None
        results, files = self.stored[consultation_id]
        manifest = {n: StoredFile(n, hashlib.sha256(d).hexdigest(), len(d), 1) for n, d in files.items()}
        return Publication(results, manifest, self.released.get(consultation_id))

    async def save(self, results: ResultsPublished, files: Mapping[str, bytes]) -> None:
        self.stored[results.consultation_id] = (results, dict(files))

    async def file(self, consultation_id: str, stored: StoredFile) -> bytes:
        return self.stored[consultation_id][1][stored.name]

    async def release(self, consultation_id: str, at: datetime) -> None:
        self.released[consultation_id] = at


def frozen(consultation_id: str) -> ResultsPublished:
    consultation = Consultation(consultation_id, "Données culturelles", CLOSED - timedelta(days=30), CLOSED, CLOSED)
    method = Method(DEFAULT_WEIGHTS, "test-version")
    return results_of("event-1", consultation, 12, method, {kind: [] for kind in RankingKind})


@pytest.fixture
async def published() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryResults]]:
    """ "c1" closed a day ago and published (public after 30 days), "c2" known but not published yet."""
    repository = InMemoryResults()
    results = frozen("c1")
    public = results.model_copy(update={"respondents": 11})  # told apart from the frozen results
    await repository.save(results, {RESULTS_JSON: results_json(public), "a-ouvrir.csv": RANKING})
    publications = Publications(repository, lambda cid: cid in {"c1", "c2"}, 30, TOKEN)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(ResultsApi(publications).router())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://publisher.test") as client:
        yield client, repository


def problem_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


async def test_nothing_is_served_before_the_results_are_published(published: Any) -> None:
    client, _ = published
    unknown = problem_of(await client.get("/v1/consultations/c9/results"), 404)
    assert unknown["detail"] == "No such consultation."
    pending = problem_of(await client.get("/v1/consultations/c2/results/files", headers=ADMIN), 404)
    assert pending["detail"].startswith("Results are published once the consultation has closed")


async def test_under_embargo_the_public_learns_the_date_and_administrators_see_the_frozen_results(
    published: Any,
) -> None:
    client, _ = published
    public_from = (CLOSED + timedelta(days=30)).isoformat()
    for suffix in ("", "/files", "/resultats.json"):
        embargoed = problem_of(await client.get(f"/v1/consultations/c1/results{suffix}"), 403)
        assert embargoed["title"] == "Embargoed"
        assert embargoed["public_from"] == public_from
    assert (await client.get("/v1/consultations/c1/results", headers=ADMIN)).json()["respondents"] == 12
    wrong = {"Authorization": "Bearer not-the-token"}
    problem_of(await client.get("/v1/consultations/c1/results", headers=wrong), 401)


async def test_once_released_the_public_gets_the_published_results_and_files(published: Any) -> None:
    client, repository = published
    problem_of(await client.post("/v1/consultations/c1/results/release"), 401)
    problem_of(await client.post("/v1/consultations/c9/results/release", headers=ADMIN), 404)
    released = await client.post("/v1/consultations/c1/results/release", headers=ADMIN)
    assert released.status_code == 204
    assert "c1" in repository.released

    assert (await client.get("/v1/consultations/c1/results")).json()["respondents"] == 11
    listing = (await client.get("/v1/consultations/c1/results/files")).json()
    assert listing["public_from"] == repository.released["c1"].isoformat()
    assert [(f["name"], f["url"], f["bytes"]) for f in listing["files"]] == [
        ("a-ouvrir.csv", "/v1/consultations/c1/results/a-ouvrir.csv", 10),
        (RESULTS_JSON, f"/v1/consultations/c1/results/{RESULTS_JSON}", len(repository.stored["c1"][1][RESULTS_JSON])),
    ]
    ranking = await client.get("/v1/consultations/c1/results/a-ouvrir.csv")
    assert ranking.content == RANKING
    assert ranking.headers["content-type"] == "text/csv; charset=utf-8"
    assert ranking.headers["etag"] == f'"{hashlib.sha256(RANKING).hexdigest()[:32]}"'
    missing = problem_of(await client.get("/v1/consultations/c1/results/nothing.csv"), 404)
    assert "see /v1/consultations/c1/results/files" in missing["detail"]

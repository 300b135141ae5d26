"""The catalogue as shared state: a dataset added, opened, retired reaches ingest and scoring live."""

import json
import uuid
from typing import Any

import httpx

from services.catalogue.domain import census_id
from tests.e2e.conftest import Pipeline
from tests.e2e.helpers import CONSENT, body_for, census_rows, poll, post, rankings, refresh, write_census

RELIURES = "53698f51a3a729239d2036fb"
RELIURES_PAGE = (
    "https://www.data.gouv.fr/fr/datasets/base-des-reliures-numerisees-de-la-bibliotheque-nationale-de-france-572265/"
)


async def catalogued(pipeline: Pipeline, dataset_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=pipeline.url("catalogue"), timeout=10) as client:
        answer = await client.get(f"/v1/datasets/{dataset_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_dataset_added_opened_and_retired_reaches_ingest_and_scoring_without_restart(
    pipeline: Pipeline,
) -> None:
    original = pipeline.census.read_text(encoding="utf-8")
    rows, fields = census_rows(pipeline)
    title = f"Registre des carillons {uuid.uuid4().hex[:6]}"
    dataset = census_id(title)
    cid = pipeline.open_consultation(seconds=600)
    improve = {
        "respondent": {"profile": "researcher"},
        "improvement_requests": [{"dataset_id": dataset, "kinds": ["api_access"]}],
        "consent": CONSENT,
    }
    try:
        async with httpx.AsyncClient(base_url=pipeline.url("ingest"), timeout=10) as client:
            assert (await post(client, cid, body_for(dataset))).status_code == 422
            new_row = dict(rows[0], titre=title, date_pub="")
            write_census(pipeline, [*rows, new_row], fields)
            assert (await refresh(client, pipeline))["published"] == 1

            async def accepted_to_open() -> bool:
                return (await post(client, cid, body_for(dataset, "essential"))).status_code == 202

            await poll("ingest accepting the new dataset to open", accepted_to_open, deadline_s=10)
            held = await catalogued(pipeline, dataset)
            assert (held["status"], held["opened_as"]) == ("not_open", None)
            assert (held["service"], held["producer_type"]) == (new_row["service"], new_row["producteur_type"])
            assert held["personal_data"] is (new_row["donnees_perso"] == "true")
            assert held["release_constraints"] == new_row["donnees_diffusion"]
            assert new_row["contact_personne"] not in json.dumps(held)

            write_census(pipeline, [*rows, dict(new_row, date_pub="2026-11-26", url=RELIURES_PAGE)], fields)
            assert (await refresh(client, pipeline))["published"] == 1
            opened = await catalogued(pipeline, dataset)
            assert opened["status"] == "open"
            assert opened["opened_as"] == {
                "opened_on": "2026-11-26",
                "dataset_id": RELIURES,
                "url": RELIURES_PAGE,
                "matched_on": "url",
                "match_score": None,
            }

            async def now_open() -> bool:
                refused = await post(client, cid, body_for(dataset))
                return refused.status_code == 422 and "déjà ouvert" in refused.text

            await poll("ingest refusing to open a dataset now open", now_open, deadline_s=10)
            assert (await post(client, cid, improve)).status_code == 202

            async def marked_open() -> bool:
                page = await rankings(client, pipeline, cid, "open")
                return [(i["key"], i["status"]) for i in page["items"]] == [(dataset, "open")]

            await poll("the ranking to show the dataset asked for as open now", marked_open, deadline_s=10)

            write_census(pipeline, rows, fields)
            assert (await refresh(client, pipeline))["retired"] == 1

            async def retired() -> bool:
                refused = await post(client, cid, improve)
                return refused.status_code == 422 and "pas au catalogue" in refused.text

            await poll("ingest refusing a retired dataset", retired, deadline_s=10)
    finally:
        pipeline.census.write_text(original, encoding="utf-8")


async def test_the_catalogue_api_searches_filters_and_pages(pipeline: Pipeline) -> None:
    async with httpx.AsyncClient(base_url=pipeline.url("catalogue"), timeout=10) as client:
        bnf = (await client.get("/v1/datasets", params={"organisation": "Bibliothèque nationale de France"})).json()
        page = (await client.get("/v1/datasets", params={"status": "open", "limit": 10, "offset": 250})).json()
        search = (await client.get("/v1/datasets", params={"q": "reliures numerisees"})).json()
        missing = await client.get("/v1/datasets/nope")
    assert bnf["total"] == 14
    assert page["total"] == 262
    assert len(page["items"]) == 10
    assert "53698f51a3a729239d2036fb" in {d["dataset_id"] for d in search["items"]}
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

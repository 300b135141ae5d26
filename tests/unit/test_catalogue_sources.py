"""The catalogue's connectors, against answers in the real formats, through httpx's MockTransport."""

import csv
import io
import json
from pathlib import Path

import httpx

from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import DataGouvConnector, OpenDataSoftConnector
from shared.contracts import DatasetStatus

FIXTURES = Path(__file__).parent / "fixtures"
BNF = "534fff5aa3a7292c64a77d09"


def real_export_of(organisation_id: str) -> str:
    """The rows of one organisation in the ministry's real `datasets.csv` export."""
    path = CatalogueSettings().open_catalogue_path
    assert path is not None
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))
    out = io.StringIO()
    fields = [f for f in rows[0] if f != "organization_name"]  # the API's export has no such column
    writer = csv.DictWriter(out, fields, delimiter=";", quoting=csv.QUOTE_ALL, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(r for r in rows if r["organization_id"] == organisation_id)
    return out.getvalue()


async def test_the_datagouv_connector_reads_an_organisations_export() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/api/1/organizations/{BNF}/":
            return httpx.Response(200, json={"id": BNF, "name": "Bibliothèque nationale de France"})
        if request.url.path == f"/api/1/organizations/{BNF}/datasets.csv":
            return httpx.Response(200, text=real_export_of(BNF))
        return httpx.Response(404, json={"message": "Not found"})

    client = httpx.AsyncClient(base_url="https://data.example", transport=httpx.MockTransport(answer))
    report = await DataGouvConnector(client, [BNF, "000000000000000000000000"]).load()
    assert len(report.datasets) == 14
    assert {d.organisation for d in report.datasets} == {"Bibliothèque nationale de France"}
    assert all(d.status is DatasetStatus.OPEN for d in report.datasets)
    assert [e.source for e in report.errors] == ["data.gouv.fr:000000000000000000000000"]


async def test_the_opendatasoft_connector_pages_through_the_catalog() -> None:
    pages = {0: "ods_catalog_page_1.json", 2: "ods_catalog_page_2.json"}

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/explore/v2.1/catalog/datasets"
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json=json.loads((FIXTURES / pages[offset]).read_text()))

    client = httpx.AsyncClient(base_url="https://portal.example/", transport=httpx.MockTransport(answer))
    connector = OpenDataSoftConnector(client)
    connector.PAGE = 2
    report = await connector.load()
    assert [d.dataset_id for d in report.datasets] == [
        "ods:liste-et-localisation-des-musees-de-france",
        "ods:frequentation-des-musees-de-france",
        "ods:base-des-lieux-et-equipements-culturels",
    ]
    museums = report.datasets[0]
    assert museums.theme == "Patrimoine"
    assert "geojson" in museums.formats
    assert museums.description == "Liste des musées bénéficiant de l'appellation « Musée de France »."
    assert [e.reason for e in report.errors] == ["invalid or missing dataset_id ''"]


async def test_a_portal_that_fails_is_reported_not_fatal() -> None:
    client = httpx.AsyncClient(
        base_url="https://portal.example/", transport=httpx.MockTransport(lambda _: httpx.Response(503))
    )
    report = await OpenDataSoftConnector(client).load()
    assert report.datasets == []
    assert "503" in report.errors[0].reason

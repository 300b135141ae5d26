"""Where the catalogue comes from: files on disk, the data.gouv.fr API, an OpenDataSoft portal.

The only I/O of the catalogue's loading; the rows go to the pure parsers of `domain.py`.
"""

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from services.catalogue.domain import (
    DATASET_ID,
    LoadReport,
    RowError,
    link_opened_census,
    parse_census,
    parse_open_catalogue,
)
from services.catalogue.settings import CatalogueSettings
from shared.contracts import DatasetRecord, DatasetStatus

Rows = Iterator[tuple[int, Mapping[str, str]]]


def _csv_rows(text: str) -> Rows:
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=";" if header.count(";") > header.count(",") else ",")
    for row in reader:
        yield reader.line_num, row


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig")


def load_open_file(path: Path) -> LoadReport:
    """A data.gouv.fr catalogue export (`datasets.csv`) on disk."""
    return parse_open_catalogue(_csv_rows(read_text(path)), path.name)


def load_census_file(path: Path, schema_path: Path | None) -> LoadReport:
    """An inventory of datasets held, in the ministry's census schema (validated against it)."""
    schema = json.loads(read_text(schema_path)) if schema_path else None
    return parse_census(_csv_rows(read_text(path)), path.name, schema)


class DataGouvConnector:
    """The datasets of organisations on data.gouv.fr, through the same `datasets.csv` export that
    the ministry's own catalogue is built from (`/api/1/organizations/{id}/datasets.csv`), with the
    organisation's name from `/api/1/organizations/{id}/`."""

    def __init__(self, client: httpx.AsyncClient, organisation_ids: Sequence[str]) -> None:
        self._client = client
        self._organisation_ids = organisation_ids

    async def load(self) -> LoadReport:
        report = LoadReport()
        for organisation_id in self._organisation_ids:
            source = f"data.gouv.fr:{organisation_id}"
            try:
                info = await self._get(f"/api/1/organizations/{organisation_id}/")
                export = await self._get(f"/api/1/organizations/{organisation_id}/datasets.csv")
            except httpx.HTTPError as error:
                report.errors.append(RowError(source, 0, f"organisation not loaded: {error!r}"))
                continue
            name = str(info.json().get("name") or "").strip()
            rows = (
                (line, {**row, "organization_name": row.get("organization_name") or name})
                for line, row in _csv_rows(export.text)
            )
            report.extend(parse_open_catalogue(rows, source))
        return report

    async def _get(self, path: str) -> httpx.Response:
        response = await self._client.get(path)
        response.raise_for_status()
        return response


class OpenDataSoftConnector:
    """The datasets of an OpenDataSoft portal (data.culture.gouv.fr runs on it), through its
    Explore API v2.1 catalog (`/api/explore/v2.1/catalog/datasets`), page by page."""

    PAGE = 100

    def __init__(self, client: httpx.AsyncClient, organisation: str | None = None) -> None:
        self._client = client
        self._organisation = organisation

    async def load(self) -> LoadReport:
        report = LoadReport()
        offset, total = 0, None
        source = f"opendatasoft:{self._client.base_url.host}"
        while total is None or offset < total:
            try:
                response = await self._client.get(
                    "/api/explore/v2.1/catalog/datasets", params={"limit": self.PAGE, "offset": offset}
                )
                response.raise_for_status()
                page = response.json()
            except (httpx.HTTPError, ValueError) as error:
                report.errors.append(RowError(source, offset, f"catalog page not loaded: {error!r}"))
                break
            total = int(page.get("total_count", 0))
            results = page.get("results") or []
            for index, result in enumerate(results, start=offset):
                record = self._record(result, source)
                if isinstance(record, str):
                    report.errors.append(RowError(source, index, record))
                else:
                    report.datasets.append(record)
            if not results:
                break
            offset += len(results)
        return report

    def _record(self, result: Mapping[str, Any], source: str) -> DatasetRecord | str:
        dataset_id = str(result.get("dataset_id") or "")
        meta = (result.get("metas") or {}).get("default") or {}
        title = str(meta.get("title") or "").strip()
        if not DATASET_ID.fullmatch(dataset_id):
            return f"invalid or missing dataset_id {dataset_id!r}"
        if not title:
            return f"dataset {dataset_id} has no title"
        themes = meta.get("theme") or []
        return DatasetRecord(
            dataset_id=f"ods:{dataset_id}",
            title=title,
            organisation=meta.get("publisher") or self._organisation,
            theme=themes[0] if themes else None,
            tags=[str(k) for k in meta.get("keyword") or []],
            status=DatasetStatus.OPEN,
            formats=["api", "csv", "json"] + (["geojson"] if "geo" in (result.get("features") or []) else []),
            frequency=meta.get("accrualperiodicity") or None,
            description=_strip_html(meta.get("description"))[:1000] or None,
            slug=dataset_id,
            url=f"{self._client.base_url}explore/dataset/{dataset_id}/",
            source=source,
        )


def _strip_html(text: Any) -> str:
    return re.sub(r"<[^>]+>", " ", str(text or "")).strip()


async def load_sources(settings: CatalogueSettings) -> LoadReport:
    """Every configured source, the first to name a dataset winning, opened census datasets linked
    to the dataset they were published as; bad rows are reported."""
    report = LoadReport()
    if settings.open_catalogue_path:
        report.extend(load_open_file(settings.open_catalogue_path))
    if settings.datagouv_organisations:
        async with httpx.AsyncClient(base_url=settings.datagouv_url, timeout=60) as client:
            report.extend(await DataGouvConnector(client, settings.datagouv_organisations).load())
    if settings.opendatasoft_url:
        async with httpx.AsyncClient(base_url=settings.opendatasoft_url, timeout=60) as client:
            report.extend(await OpenDataSoftConnector(client).load())
    if settings.census_path:
        report.extend(load_census_file(settings.census_path, settings.census_schema_path))
    report.datasets = link_opened_census(report.datasets)
    return report

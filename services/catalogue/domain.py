"""The catalogue's rules: reading catalogue rows, normalising titles, matching suggestions, enriching."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from rapidfuzz import fuzz, process

from shared.contracts import (
    DatasetRecord,
    DatasetStatus,
    DatasetSummary,
    OpenedAs,
    ResponseEnriched,
    ResponseSubmitted,
    SuggestionMatch,
)
from shared.contracts.suggestions import normalise_title, slugify

CENSUS_ID_PREFIX = "census-"
DESCRIPTION_LIMIT = 1000
DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


@dataclass(frozen=True)
class RowError:
    source: str
    line: int
    reason: str


@dataclass
class LoadReport:
    datasets: list[DatasetRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def extend(self, other: "LoadReport") -> None:
        known = {d.dataset_id for d in self.datasets}
        self.datasets += [d for d in other.datasets if d.dataset_id not in known]
        self.errors += other.errors


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _cut(value: str | None) -> str | None:
    value = _blank_to_none(value)
    return value[:DESCRIPTION_LIMIT] if value else None


def parse_open_catalogue(rows: Iterable[tuple[int, Mapping[str, str]]], source: str) -> LoadReport:
    """Datasets of a data.gouv.fr catalogue export (open datasets); bad rows are reported, not loaded."""
    report = LoadReport()
    seen: set[str] = set()
    for line, row in rows:
        dataset_id = (row.get("id") or "").strip()
        title = (row.get("title") or "").strip()
        if not DATASET_ID.fullmatch(dataset_id):
            report.errors.append(RowError(source, line, f"invalid or missing id {dataset_id!r}"))
            continue
        if not title:
            report.errors.append(RowError(source, line, "missing title"))
            continue
        if dataset_id in seen:
            report.errors.append(RowError(source, line, f"duplicate id {dataset_id}"))
            continue
        if (row.get("archived") or "").strip().lower() == "true":
            continue
        seen.add(dataset_id)
        report.datasets.append(
            DatasetRecord(
                dataset_id=dataset_id,
                title=title,
                organisation=_blank_to_none(row.get("organization_name") or row.get("organization")),
                tags=_split(row.get("tags")),
                status=DatasetStatus.OPEN,
                formats=_split(row.get("resources_formats")),
                frequency=_blank_to_none(row.get("frequency")),
                spatial_granularity=_blank_to_none(row.get("spatial.granularity")),
                description=_cut(row.get("description_short") or row.get("description")),
                slug=_blank_to_none(row.get("slug")),
                acronym=_blank_to_none(row.get("acronym")),
                url=_blank_to_none(row.get("url")),
                source=source,
            )
        )
    return report


def census_id(title: str) -> str:
    """Stable id of a census row, derived from its title (the inventory schema has no id field)."""
    return CENSUS_ID_PREFIX + slugify(title)[:80].rstrip("-")


_TRUE, _FALSE = {"true", "vrai", "oui", "1", "yes"}, {"false", "faux", "non", "0", "no"}


def census_row_errors(row: Mapping[str, str], schema: Mapping[str, Any]) -> list[str]:
    """What a census row breaks of the inventory's Table Schema: required fields, enums, types."""
    problems = []
    for spec in schema.get("fields", []):
        name, value = spec["name"], (row.get(spec["name"]) or "").strip()
        constraints = spec.get("constraints", {})
        if not value:
            if constraints.get("required"):
                problems.append(f"{name} is required")
            continue
        if "enum" in constraints and value not in constraints["enum"]:
            problems.append(f"{name} {value!r} is not one of the schema's values")
        if spec.get("type") == "boolean" and value.lower() not in _TRUE | _FALSE:
            problems.append(f"{name} {value!r} is not a boolean")
        if spec.get("type") == "date" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            problems.append(f"{name} {value!r} is not a date (YYYY-MM-DD)")
    return problems


def _boolean(value: str | None) -> bool | None:
    value = (value or "").strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def parse_census(
    rows: Iterable[tuple[int, Mapping[str, str]]], source: str, schema: Mapping[str, Any] | None = None
) -> LoadReport:
    """Datasets of an inventory in the ministry's census schema. A row with a first publication
    date (`date_pub`) has been opened; the others are not open yet."""
    report = LoadReport()
    seen: set[str] = set()
    for line, row in rows:
        title = (row.get("titre") or "").strip()
        problems = census_row_errors(row, schema) if schema else []
        if not title and "titre is required" not in problems:
            problems.insert(0, "titre is required")
        opened_on = _date(row.get("date_pub"))
        if opened_on is None and _blank_to_none(row.get("date_pub")) and not any("date_pub " in p for p in problems):
            problems.append(f"date_pub {row.get('date_pub')!r} is not a date")
        if problems:
            report.errors.append(RowError(source, line, "; ".join(problems)))
            continue
        dataset_id = census_id(title)
        if dataset_id in seen:
            report.errors.append(RowError(source, line, f"duplicate title {title!r}"))
            continue
        seen.add(dataset_id)
        # `contact_personne` names people: it is left out on purpose.
        report.datasets.append(
            DatasetRecord(
                dataset_id=dataset_id,
                title=title,
                organisation=_blank_to_none(row.get("nom_orga")),
                theme=_blank_to_none(row.get("domaine")),
                tags=_split(row.get("mots_cles")),
                status=DatasetStatus.OPEN if opened_on else DatasetStatus.NOT_OPEN,
                formats=_split(row.get("format")),
                frequency=_blank_to_none(row.get("freq_maj")),
                spatial_granularity=_blank_to_none(row.get("couv_geo")),
                description=_cut(row.get("description")),
                acronym=_blank_to_none(row.get("si")),
                url=_blank_to_none(row.get("url")),
                source=source,
                service=_blank_to_none(row.get("service")),
                sous_direction=_blank_to_none(row.get("sous_direction")),
                producer_type=_blank_to_none(row.get("producteur_type")),
                service_contact=_blank_to_none(row.get("contact_service")),
                personal_data=_boolean(row.get("donnees_perso")),
                confidential=_boolean(row.get("donnees_secret")),
                intellectual_property=_boolean(row.get("donnees_pi")),
                release_constraints=_cut(row.get("donnees_diffusion")),
                opened_as=OpenedAs(opened_on=opened_on) if opened_on else None,
            )
        )
    return report


@dataclass(frozen=True)
class MatchingMethod:
    """How suggestions are matched; chosen with `benchmarks.suggestion_matching` (see its output)."""

    scorer: str = "WRatio"
    threshold: float = 90.0  # above 100: exact normalised titles only


SCORERS = {
    "ratio": fuzz.ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
}


class Catalogue:
    """The datasets the ministry holds, open or not, with what matching needs."""

    def __init__(self, datasets: Iterable[DatasetRecord], method: MatchingMethod | None = None) -> None:
        self.datasets: dict[str, DatasetRecord] = {d.dataset_id: d for d in datasets}
        self.method = method or MatchingMethod()
        self._exact: dict[str, tuple[str, str]] = {}
        self._names: list[str] = []
        self._owners: list[tuple[str, str]] = []
        # Frozen models: each dataset's summary is built once, not for every response naming it.
        self._summaries: dict[str, DatasetSummary] = {}
        for dataset in self.datasets.values():
            for kind, name in (
                ("title", dataset.title),
                ("acronym", dataset.acronym),
                ("slug", re.sub(r"-\d+$", "", dataset.slug or "")),
            ):
                key = normalise_title(name or "")
                if not key:
                    continue
                self._exact.setdefault(key, (dataset.dataset_id, kind))
                if kind != "acronym":  # short acronyms match anything fuzzily: exact only
                    self._names.append(key)
                    self._owners.append((dataset.dataset_id, kind))

    def match_suggestion(self, title: str) -> SuggestionMatch:
        """The group a free-text suggestion belongs to: a catalogue dataset, or its normalised title."""
        key = normalise_title(title)
        exact = self._exact.get(key)
        if exact is not None:
            return self._matched(exact[0], exact[1], 100.0)
        if key and self.method.threshold <= 100:
            best = process.extractOne(
                key, self._names, scorer=SCORERS[self.method.scorer], score_cutoff=self.method.threshold
            )
            if best is not None:
                dataset_id, kind = self._owners[best[2]]
                return self._matched(dataset_id, kind, round(float(best[1]), 1))
        return SuggestionMatch(group_key=f"title:{key or slugify(title) or '-'}", title=title.strip())

    def _matched(self, dataset_id: str, kind: str, score: float) -> SuggestionMatch:
        return SuggestionMatch(
            group_key=f"dataset:{dataset_id}",
            matched_dataset_id=dataset_id,
            title=self.datasets[dataset_id].title,
            match_score=score,
            matched_on=kind,
        )

    def enrich(self, response: ResponseSubmitted, now: datetime) -> ResponseEnriched:
        """The response with the metadata of every dataset it names (unknown ids are left out)."""
        named = [r.dataset_id for r in response.open_requests]
        named += [r.dataset_id for r in response.improvement_requests]
        return ResponseEnriched(
            event_id=response.event_id,
            occurred_at=now,
            response=response,
            datasets={dataset_id: self.summary(dataset_id) for dataset_id in named if dataset_id in self.datasets},
            suggestions=[self.match_suggestion(s.title) for s in response.suggestions],
        )

    def summary(self, dataset_id: str) -> DatasetSummary:
        """The summary of a dataset of the catalogue, as responses are enriched with it."""
        found = self._summaries.get(dataset_id)
        if found is None:
            found = self._summaries[dataset_id] = summary_of(self.datasets[dataset_id])
        return found

    def search(
        self,
        query: str | None = None,
        status: DatasetStatus | None = None,
        organisation: str | None = None,
        theme: str | None = None,
    ) -> list[DatasetRecord]:
        """Datasets whose title, description or tags contain every word of `query` (accents and
        case ignored), filtered; by title."""
        words = slugify(query or "").split("-") if query else []
        found = []
        for dataset in self.datasets.values():
            if status is not None and dataset.status is not status:
                continue
            if organisation is not None and slugify(dataset.organisation or "") != slugify(organisation):
                continue
            if theme is not None and slugify(dataset.theme or "") != slugify(theme):
                continue
            haystack = slugify(" ".join([dataset.title, dataset.description or "", *dataset.tags]))
            if all(word in haystack for word in words if word):
                found.append(dataset)
        return sorted(found, key=lambda d: slugify(d.title))


def _url_key(url: str) -> str:
    """A URL without scheme, `www.`, language segment of data.gouv.fr, query or trailing slash."""
    parts = urlsplit(url.strip())
    path = re.sub(r"^/[a-z]{2}(?=/datasets/)", "", parts.path).rstrip("/")
    return parts.netloc.lower().removeprefix("www.") + path


_DATAGOUV_DATASET = re.compile(r"(?:[a-z0-9-]+\.)?data\.gouv\.fr/datasets/(?:r/)?([^/]+)")


class OpenCatalogue:
    """The published datasets a census dataset may have been opened as, found by URL or by title."""

    def __init__(self, published: Iterable[DatasetRecord], method: MatchingMethod | None = None) -> None:
        self._titles = Catalogue(published, method)
        self._by_url: dict[str, DatasetRecord] = {}
        self._by_datagouv_name: dict[str, DatasetRecord] = {}
        for dataset in self._titles.datasets.values():
            key = _url_key(dataset.url or "")
            if dataset.url:
                self._by_url.setdefault(key, dataset)
            self._by_datagouv_name.setdefault(dataset.dataset_id, dataset)
            if dataset.slug and _DATAGOUV_DATASET.fullmatch(key):
                self._by_datagouv_name.setdefault(dataset.slug, dataset)

    def named_by(self, url: str) -> DatasetRecord | None:
        """The published dataset a URL points at: its own page, or a data.gouv.fr page by id or slug."""
        key = _url_key(url)
        if key in self._by_url:
            return self._by_url[key]
        datagouv = _DATAGOUV_DATASET.fullmatch(key)
        return self._by_datagouv_name.get(datagouv.group(1)) if datagouv else None

    def opened_as(self, dataset: DatasetRecord, opened_on: date) -> OpenedAs:
        """Where a census dataset was opened: the URL its census row gives (linked to the published
        dataset it names, if any), else the published dataset its title matches, else unknown."""
        if dataset.url:
            named = self.named_by(dataset.url)
            return OpenedAs(
                opened_on=opened_on,
                dataset_id=named.dataset_id if named else None,
                url=dataset.url,
                matched_on="url",
            )
        match = self._titles.match_suggestion(dataset.title)
        if match.matched_dataset_id is None:
            return OpenedAs(opened_on=opened_on)
        return OpenedAs(
            opened_on=opened_on,
            dataset_id=match.matched_dataset_id,
            url=self._titles.datasets[match.matched_dataset_id].url,
            matched_on="title",
            match_score=match.match_score,
        )


def link_opened_census(datasets: Iterable[DatasetRecord], method: MatchingMethod | None = None) -> list[DatasetRecord]:
    """The datasets, each opened census dataset (`opened_as` set) linked to the published dataset it
    was opened as; census datasets keep their `census-` id, which other services key on."""
    datasets = list(datasets)
    published = OpenCatalogue(
        (d for d in datasets if d.status is DatasetStatus.OPEN and not d.dataset_id.startswith(CENSUS_ID_PREFIX)),
        method,
    )
    return [
        d.model_copy(update={"opened_as": published.opened_as(d, d.opened_as.opened_on)}) if d.opened_as else d
        for d in datasets
    ]


def summary_of(record: DatasetRecord) -> DatasetSummary:
    """The part of a record a response is enriched with."""
    return DatasetSummary.model_validate(record.model_dump(include=set(DatasetSummary.model_fields)))


@dataclass(frozen=True)
class CatalogueChange:
    """What a refresh changes: datasets to (re)publish, and ids to retire."""

    published: list[DatasetRecord]
    retired: list[str]


def changes(before: Mapping[str, DatasetRecord], after: Mapping[str, DatasetRecord]) -> CatalogueChange:
    """The difference between two loads of the catalogue, in the order it should be published."""
    published = [d for dataset_id, d in sorted(after.items()) if before.get(dataset_id) != d]
    retired = sorted(set(before) - set(after))
    return CatalogueChange(published, retired)

"""The catalogue's rules: reading catalogue rows, normalising titles, enriching responses."""

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.contracts import (
    DatasetRecord,
    DatasetStatus,
    DatasetSummary,
    ResponseEnriched,
    ResponseSubmitted,
    SuggestionMatch,
)

CENSUS_ID_PREFIX = "census-"
_STOP_WORDS = frozenset(
    {
        "a",
        "au",
        "aux",
        "d",
        "de",
        "des",
        "du",
        "en",
        "et",
        "l",
        "la",
        "le",
        "les",
        "leur",
        "leurs",
        "par",
        "pour",
        "sur",
        "un",
        "une",
        "dans",
        "ou",
        "the",
        "of",
        "and",
    }
)


@dataclass(frozen=True)
class RowError:
    source: str
    line: int
    reason: str


@dataclass
class LoadReport:
    datasets: list[DatasetRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def slugify(text: str) -> str:
    """ASCII, lower-case, hyphen-separated form of a text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def normalise_title(text: str) -> str:
    """Compare-ready form of a French title: no case, accents, punctuation, stop words, plurals."""
    words = []
    for word in slugify(text).split("-"):
        if not word or word in _STOP_WORDS:
            continue
        if len(word) > 3 and word[-1] in "sx":
            word = word[:-1]
        words.append(word)
    return " ".join(words)


def parse_open_catalogue(rows: Iterable[tuple[int, Mapping[str, str]]], source: str) -> LoadReport:
    """Datasets of a data.gouv.fr catalogue export (open datasets); bad rows are reported, not loaded."""
    report = LoadReport()
    seen: set[str] = set()
    for line, row in rows:
        dataset_id = (row.get("id") or "").strip()
        title = (row.get("title") or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}", dataset_id):
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


def parse_census(rows: Iterable[tuple[int, Mapping[str, str]]], source: str) -> LoadReport:
    """Datasets of an inventory in the ministry's census schema (not yet open)."""
    report = LoadReport()
    seen: set[str] = set()
    for line, row in rows:
        title = (row.get("titre") or "").strip()
        missing = [name for name in ("titre", "description", "nom_orga") if not (row.get(name) or "").strip()]
        if missing:
            report.errors.append(RowError(source, line, f"missing required field(s): {', '.join(missing)}"))
            continue
        dataset_id = census_id(title)
        if dataset_id in seen:
            report.errors.append(RowError(source, line, f"duplicate title {title!r}"))
            continue
        seen.add(dataset_id)
        report.datasets.append(
            DatasetRecord(
                dataset_id=dataset_id,
                title=title,
                organisation=_blank_to_none(row.get("nom_orga")),
                theme=_blank_to_none(row.get("domaine")),
                tags=_split(row.get("mots_cles")),
                status=DatasetStatus.NOT_OPEN,
                formats=_split(row.get("format")),
                frequency=_blank_to_none(row.get("freq_maj")),
                spatial_granularity=_blank_to_none(row.get("couv_geo")),
                acronym=_blank_to_none(row.get("si")),
                url=_blank_to_none(row.get("url")),
                source=source,
            )
        )
    return report


class Catalogue:
    """The datasets the ministry holds, open or not, with what matching needs."""

    def __init__(self, datasets: Iterable[DatasetRecord]) -> None:
        self.datasets: dict[str, DatasetRecord] = {d.dataset_id: d for d in datasets}
        self._by_name: dict[str, str] = {}
        for dataset in self.datasets.values():
            for name in (dataset.title, dataset.acronym, dataset.slug):
                if name:
                    self._by_name.setdefault(normalise_title(name), dataset.dataset_id)

    def match_suggestion(self, title: str) -> SuggestionMatch:
        """The group a free-text suggestion belongs to: a catalogue dataset, or its normalised title."""
        key = normalise_title(title)
        dataset_id = self._by_name.get(key)
        if dataset_id is not None:
            return SuggestionMatch(
                group_key=f"dataset:{dataset_id}",
                matched_dataset_id=dataset_id,
                title=self.datasets[dataset_id].title,
            )
        return SuggestionMatch(group_key=f"title:{key or slugify(title) or '-'}", title=title.strip())

    def enrich(self, response: ResponseSubmitted, now: datetime) -> ResponseEnriched:
        """The response with the metadata of every dataset it names (unknown ids are left out)."""
        named = [r.dataset_id for r in response.open_requests]
        named += [r.dataset_id for r in response.improvement_requests]
        return ResponseEnriched(
            event_id=response.event_id,
            occurred_at=now,
            response=response,
            datasets={
                dataset_id: summary_of(self.datasets[dataset_id]) for dataset_id in named if dataset_id in self.datasets
            },
            suggestions=[self.match_suggestion(s.title) for s in response.suggestions],
        )


def summary_of(record: DatasetRecord) -> DatasetSummary:
    """The part of a record a response is enriched with."""
    return DatasetSummary.model_validate(record.model_dump(include=set(DatasetSummary.model_fields)))

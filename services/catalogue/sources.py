"""Reading catalogue files from disk (the only file I/O of the catalogue)."""

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path

from services.catalogue.domain import Catalogue, LoadReport, parse_census, parse_open_catalogue


def _rows(path: Path, delimiter: str) -> Iterator[tuple[int, Mapping[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for row in reader:
            yield reader.line_num, row


def _sniff_delimiter(path: Path) -> str:
    with path.open(encoding="utf-8-sig") as handle:
        header = handle.readline()
    return ";" if header.count(";") > header.count(",") else ","


def load_catalogue(open_catalogue: Path, census: Path | None) -> tuple[Catalogue, LoadReport]:
    """The catalogue from a data.gouv.fr export and an optional census; errors are reported."""
    report = parse_open_catalogue(_rows(open_catalogue, _sniff_delimiter(open_catalogue)), open_catalogue.name)
    if census is not None:
        census_report = parse_census(_rows(census, _sniff_delimiter(census)), census.name)
        known = {d.dataset_id for d in report.datasets}
        report.datasets += [d for d in census_report.datasets if d.dataset_id not in known]
        report.errors += census_report.errors
    return Catalogue(report.datasets), report

from datetime import UTC, datetime
from pathlib import Path

from services.catalogue.domain import Catalogue, census_id, normalise_title, parse_open_catalogue
from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import load_catalogue
from shared.contracts import DatasetStatus, OpenRequest, Priority, Profile, ResponseSubmitted, Suggestion

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def real_catalogue() -> Catalogue:
    settings = CatalogueSettings()
    catalogue, report = load_catalogue(settings.open_catalogue_path, settings.census_path)
    assert report.errors == []
    return catalogue


def test_the_real_catalogue_loads_every_open_dataset_and_the_census() -> None:
    catalogue = real_catalogue()
    statuses = [d.status for d in catalogue.datasets.values()]
    assert statuses.count(DatasetStatus.OPEN) == 262
    assert statuses.count(DatasetStatus.NOT_OPEN) == 12
    reliures = catalogue.datasets["53698f51a3a729239d2036fb"]
    assert reliures.organisation == "Bibliothèque nationale de France"
    assert "html" in reliures.formats
    organs = catalogue.datasets[census_id("Inventaire des orgues protégés au titre des monuments historiques")]
    assert organs.theme == "Patrimoine"
    assert organs.status is DatasetStatus.NOT_OPEN


def test_a_malformed_row_is_reported_with_its_line_and_the_rest_loads(tmp_path: Path) -> None:
    real = CatalogueSettings().open_catalogue_path.read_text(encoding="utf-8").splitlines()
    header, rows = real[0], real[1:4]
    broken = rows[1].replace('"536990caa3a729239d203ac1"', '"not an id!"', 1)
    path = tmp_path / "catalogue.csv"
    path.write_text("\n".join([header, rows[0], broken, rows[2]]) + "\n", encoding="utf-8")
    catalogue, report = load_catalogue(path, None)
    assert len(catalogue.datasets) == 2
    assert [(e.line, e.reason) for e in report.errors] == [(3, "invalid or missing id 'not an id!'")]


def test_duplicate_ids_and_missing_titles_are_refused() -> None:
    rows = [
        (2, {"id": "a1", "title": "One"}),
        (3, {"id": "a1", "title": "Again"}),
        (4, {"id": "a2", "title": " "}),
    ]
    report = parse_open_catalogue(rows, "test.csv")
    assert [d.dataset_id for d in report.datasets] == ["a1"]
    assert [e.line for e in report.errors] == [3, 4]


def test_titles_normalise_case_accents_punctuation_stop_words_and_plurals() -> None:
    assert normalise_title("Les Reliures numérisées de la BnF !") == normalise_title("reliure numerisee bnf")
    assert normalise_title("Fréquentation des musées") == "frequentation musee"


def test_enrichment_carries_metadata_and_groups_suggestions() -> None:
    catalogue = real_catalogue()
    organs = census_id("Inventaire des orgues protégés au titre des monuments historiques")
    response = ResponseSubmitted(
        event_id="r1",
        occurred_at=NOW,
        consultation_id="c1",
        response_id="r1",
        respondent_key="k",
        profile=Profile.STUDENT,
        received_at=NOW,
        open_requests=[
            OpenRequest(dataset_id=organs, priority=Priority.USEFUL),
            OpenRequest(dataset_id="unknown-dataset", priority=Priority.USEFUL),
        ],
        suggestions=[
            Suggestion(title="Base des reliures numérisées de la Bibliothèque nationale de France"),
            Suggestion(title="Les Fanfares de France"),
        ],
    )
    enriched = catalogue.enrich(response, NOW)
    assert set(enriched.datasets) == {organs}
    assert enriched.datasets[organs].title.startswith("Inventaire des orgues")
    assert enriched.suggestions[0].matched_dataset_id == "53698f51a3a729239d2036fb"
    assert enriched.suggestions[1].group_key == "title:fanfare france"

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

from services.catalogue.domain import (
    Catalogue,
    census_id,
    changes,
    link_opened_census,
    parse_census,
    parse_open_catalogue,
)
from services.catalogue.settings import CatalogueSettings
from services.catalogue.sources import load_census_file, load_open_file
from shared.contracts import (
    DatasetRecord,
    DatasetStatus,
    OpenedAs,
    OpenRequest,
    Priority,
    Profile,
    ResponseSubmitted,
    Suggestion,
)
from shared.contracts.suggestions import normalise_title

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SETTINGS = CatalogueSettings()
assert SETTINGS.open_catalogue_path
assert SETTINGS.census_path
OPEN_FILE: Path = SETTINGS.open_catalogue_path
CENSUS_FILE: Path = SETTINGS.census_path
CENSUS_SCHEMA = json.loads((SETTINGS.census_schema_path or Path()).read_text(encoding="utf-8"))


def real_catalogue() -> Catalogue:
    report = load_open_file(OPEN_FILE)
    report.extend(load_census_file(CENSUS_FILE, SETTINGS.census_schema_path))
    assert report.errors == []
    return Catalogue(report.datasets)


def test_the_real_catalogue_loads_every_open_dataset_and_the_census() -> None:
    catalogue = real_catalogue()
    statuses = [d.status for d in catalogue.datasets.values()]
    assert statuses.count(DatasetStatus.OPEN) == 262
    assert statuses.count(DatasetStatus.NOT_OPEN) == 12
    reliures = catalogue.datasets["53698f51a3a729239d2036fb"]
    assert reliures.organisation == "Bibliothèque nationale de France"
    assert "html" in reliures.formats
    assert reliures.description
    assert len(reliures.description) <= 1000
    organs = catalogue.datasets[census_id("Inventaire des orgues protégés au titre des monuments historiques")]
    assert organs.theme == "Patrimoine"
    assert organs.status is DatasetStatus.NOT_OPEN


def test_a_malformed_row_is_reported_with_its_line_and_the_rest_loads(tmp_path: Path) -> None:
    real = OPEN_FILE.read_text(encoding="utf-8").splitlines()
    header, rows = real[0], real[1:4]
    broken = rows[1].replace('"536990caa3a729239d203ac1"', '"not an id!"', 1)
    path = tmp_path / "catalogue.csv"
    path.write_text("\n".join([header, rows[0], broken, rows[2]]) + "\n", encoding="utf-8")
    report = load_open_file(path)
    assert len(report.datasets) == 2
    assert [(e.line, e.reason) for e in report.errors] == [(3, "invalid or missing id 'not an id!'")]


def test_census_rows_are_checked_against_the_ministrys_schema(tmp_path: Path) -> None:
    lines = CENSUS_FILE.read_text(encoding="utf-8").splitlines()
    bad_domain = lines[1].replace(",Patrimoine,", ",Gastronomie,", 1)
    no_title = "," + lines[2].split(",", 1)[1]
    path = tmp_path / "census.csv"
    path.write_text("\n".join([lines[0], bad_domain, no_title, lines[3]]) + "\n", encoding="utf-8")
    report = load_census_file(path, SETTINGS.census_schema_path)
    assert len(report.datasets) == 1
    assert [e.line for e in report.errors] == [2, 3]
    assert "domaine 'Gastronomie' is not one of the schema's values" in report.errors[0].reason
    assert "titre is required" in report.errors[1].reason


def test_a_census_row_with_a_publication_date_is_open(tmp_path: Path) -> None:
    assert all(d.status is DatasetStatus.NOT_OPEN for d in load_census_file(CENSUS_FILE, None).datasets)
    rows = list(csv.DictReader(io.StringIO(CENSUS_FILE.read_text(encoding="utf-8"))))
    rows[0]["date_pub"] = "2026-11-26"
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "census.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    report = load_census_file(path, SETTINGS.census_schema_path)
    assert report.errors == []
    assert [d.status for d in report.datasets][:2] == [DatasetStatus.OPEN, DatasetStatus.NOT_OPEN]
    assert [d.opened_as for d in report.datasets][:2] == [OpenedAs(opened_on=date(2026, 11, 26)), None]


def test_duplicate_ids_and_missing_titles_are_refused() -> None:
    rows = [(2, {"id": "a1", "title": "One"}), (3, {"id": "a1", "title": "Again"}), (4, {"id": "a2", "title": " "})]
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
            Suggestion(title="reliures numerisees bibliotheque nationale"),
            Suggestion(title="Les Fanfares de France"),
        ],
    )
    enriched = catalogue.enrich(response, NOW)
    assert set(enriched.datasets) == {organs}
    assert enriched.datasets[organs].title.startswith("Inventaire des orgues")
    exact, fuzzy, unmatched = enriched.suggestions
    assert (exact.matched_dataset_id, exact.match_score, exact.matched_on) == (
        "53698f51a3a729239d2036fb",
        100.0,
        "title",
    )
    assert fuzzy.matched_dataset_id == "53698f51a3a729239d2036fb"
    assert fuzzy.match_score is not None
    assert fuzzy.match_score < 100
    assert (unmatched.group_key, unmatched.matched_dataset_id) == ("title:fanfare france", None)


def test_search_finds_words_in_title_description_and_tags_whatever_the_accents() -> None:
    catalogue = real_catalogue()
    assert {d.dataset_id for d in catalogue.search("reliures numerisees")} >= {"53698f51a3a729239d2036fb"}
    not_open = catalogue.search("musees", status=DatasetStatus.NOT_OPEN)
    assert [d.title for d in not_open] == ["Fréquentation mensuelle des musées de France, par musée"]
    bnf = catalogue.search(organisation="Bibliothèque nationale de France")
    assert len(bnf) == 14


def test_a_refresh_publishes_only_what_changed() -> None:
    catalogue = real_catalogue()
    before = dict(catalogue.datasets)
    after = dict(before)
    organs = census_id("Inventaire des orgues protégés au titre des monuments historiques")
    after[organs] = after[organs].model_copy(update={"status": DatasetStatus.OPEN})
    del after["53698f51a3a729239d2036fb"]
    change = changes(before, after)
    assert [d.dataset_id for d in change.published] == [organs]
    assert change.retired == ["53698f51a3a729239d2036fb"]


def test_the_matching_in_force_keeps_its_measured_precision_and_recall() -> None:
    from benchmarks.suggestion_matching import build_set, evaluate

    report = load_open_file(OPEN_FILE)
    scores = evaluate(Catalogue(report.datasets), build_set(Catalogue(report.datasets)))
    assert scores.match_precision >= 0.92
    assert scores.match_recall >= 0.90
    assert scores.group_precision >= 0.92


RELIURES = "53698f51a3a729239d2036fb"
ORGANS = "Inventaire des orgues protégés au titre des monuments historiques"


def census_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(CENSUS_FILE.read_text(encoding="utf-8"))))


def census_row(title: str, **columns: str) -> dict[str, str]:
    organs = next(row for row in census_rows() if row["titre"] == ORGANS)
    return dict(organs, titre=title, **columns)


def opened(title: str, **columns: str) -> DatasetRecord:
    """A census row opened on 2026-11-26, linked against the real open catalogue."""
    report = load_open_file(OPEN_FILE)
    census = parse_census([(2, census_row(title, date_pub="2026-11-26", **columns))], "census.csv")
    assert census.errors == []
    report.extend(census)
    linked = {d.dataset_id: d for d in link_opened_census(report.datasets)}
    dataset = linked[census_id(title)]
    assert dataset.status is DatasetStatus.OPEN
    return dataset


def test_the_census_columns_on_producers_and_release_are_kept() -> None:
    catalogue = real_catalogue()
    organs = catalogue.datasets[census_id(ORGANS)]
    assert (organs.service, organs.producer_type) == (
        "Direction générale des patrimoines et de l'architecture",
        "1. Administration centrale",
    )
    assert (organs.personal_data, organs.confidential, organs.intellectual_property) == (False, False, False)
    assert organs.release_constraints == "Ouvrable"
    assert organs.opened_as is None
    finds = catalogue.datasets[census_id("Déclarations de découvertes archéologiques fortuites")]
    assert finds.confidential is True
    assert "risque de pillage" in (finds.release_constraints or "")


def test_the_schemas_yes_no_booleans_and_blanks_are_read_and_no_persons_contact_is_kept() -> None:
    row = census_row(
        "Registre des carillons",
        service="Service des patrimoines",
        sous_direction="Sous-direction des monuments historiques",
        contact_service="patrimoines@culture.gouv.fr",
        contact_personne="jeanne.martin@culture.gouv.fr",
        donnees_perso="Oui",
        donnees_secret="Non",
        donnees_pi="",
    )
    report = parse_census([(2, row)], "census.csv", CENSUS_SCHEMA)
    assert report.errors == []
    (dataset,) = report.datasets
    assert dataset.sous_direction == "Sous-direction des monuments historiques"
    assert dataset.service_contact == "patrimoines@culture.gouv.fr"
    assert (dataset.personal_data, dataset.confidential, dataset.intellectual_property) == (True, False, None)
    assert "jeanne.martin" not in dataset.model_dump_json()


def test_a_publication_date_that_is_no_date_is_reported_even_without_the_schema() -> None:
    report = parse_census([(2, census_row("Registre des carillons", date_pub="2026-02-30"))], "census.csv")
    assert report.datasets == []
    assert [(e.line, e.reason) for e in report.errors] == [(2, "date_pub '2026-02-30' is not a date")]


def test_an_opened_census_dataset_is_linked_to_the_dataset_its_url_names_by_slug_or_id() -> None:
    by_slug = "https://www.data.gouv.fr/fr/datasets/base-des-reliures-numerisees-de-la-bibliotheque-nationale-de-france-572265/"
    by_id = f"https://data.gouv.fr/datasets/{RELIURES}"
    for url in (by_slug, by_id):
        dataset = opened(ORGANS, url=url)
        assert dataset.dataset_id == census_id(ORGANS)
        assert dataset.opened_as == OpenedAs(
            opened_on=date(2026, 11, 26), dataset_id=RELIURES, url=url, matched_on="url"
        )


def test_an_opened_census_datasets_url_is_kept_as_given_when_it_names_no_open_dataset() -> None:
    url = "https://www.culture.gouv.fr/orgues-proteges.csv"
    assert opened(ORGANS, url=url).opened_as == OpenedAs(opened_on=date(2026, 11, 26), url=url, matched_on="url")


def test_an_opened_census_dataset_without_url_is_linked_by_title_with_its_score() -> None:
    dataset = opened("Collectes du web électoral")
    assert dataset.dataset_id == census_id("Collectes du web électoral")
    assert dataset.opened_as == OpenedAs(
        opened_on=date(2026, 11, 26),
        dataset_id="536990caa3a729239d203ac1",
        url="https://www.data.gouv.fr/datasets/collectes-du-web-electoral-par-la-bnf",
        matched_on="title",
        match_score=95.0,
    )


def test_an_opened_census_dataset_matching_nothing_keeps_only_its_date() -> None:
    assert opened(ORGANS).opened_as == OpenedAs(opened_on=date(2026, 11, 26))


def test_census_datasets_are_never_linked_to_one_another() -> None:
    twin = parse_census([(2, census_row(ORGANS + " (copie)", date_pub="2026-11-26"))], "census.csv")
    twin.extend(parse_census([(2, census_row(ORGANS))], "other.csv"))
    linked = link_opened_census(twin.datasets)
    assert [d.opened_as for d in linked] == [OpenedAs(opened_on=date(2026, 11, 26)), None]

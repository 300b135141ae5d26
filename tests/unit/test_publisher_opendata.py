import csv
import io
import json
from pathlib import Path

import pytest

from services.publisher.archive import (
    archive_of,
    compute_rankings,
    disagreements,
)
from services.publisher.files import (
    ANSWERS_CSV,
    DATAPACKAGE_JSON,
    OPEN_CSV,
    REPORT_HTML,
    RESULTS_JSON,
    SUGGESTIONS_CSV,
    recompute,
    render_files,
    safe_cell,
    unsafe_cell,
)
from services.scoring.domain import DEFAULT_WEIGHTS, counted_ballot, rank
from shared.contracts import (
    RankingKind,
)
from tests.publisher_builders import DATASETS, TITLES, published, random_stream, scored


@pytest.mark.parametrize("seed", range(4))
def test_rankings_from_the_archive_equal_those_scoring_tallied(seed: int) -> None:
    store = scored(random_stream(seed))
    archive = archive_of(counted_ballot(b) for b in store.ballots.values())
    ours = compute_rankings(archive, DATASETS, DEFAULT_WEIGHTS)
    theirs = {}
    for kind in RankingKind:
        rows = store.stored_rows(kind)
        if kind is RankingKind.SUGGESTIONS:  # the in-memory store keys rows by dataset id; suggestions have none
            rows = [r.__class__(key=r.key, dataset_id=r.key if r.key == "d3" else None, title=None, counts=r.counts)
                    for r in rows]  # fmt: skip
        theirs[kind] = rank(kind, rows, DEFAULT_WEIGHTS)
    assert disagreements(ours, theirs) == []
    assert len(archive) == len(store.ballots)
    assert sum(r.submissions for r in archive) == len({m.response.response_id for m in random_stream(seed)})


def test_disagreements_are_reported() -> None:
    store = scored(random_stream(1))
    archive = archive_of(counted_ballot(b) for b in store.ballots.values())
    ours = compute_rankings(archive, DATASETS, DEFAULT_WEIGHTS)
    theirs = compute_rankings(archive[1:], DATASETS, DEFAULT_WEIGHTS)
    assert disagreements(ours, theirs)


def test_the_internal_archive_is_numbered_in_receipt_order_and_no_identifier_is_published() -> None:
    ballots = [counted_ballot(b) for b in scored(random_stream(2)).ballots.values()]
    archive = archive_of(reversed(ballots))
    assert [r.number for r in archive] == list(range(1, len(ballots) + 1))
    assert [r.received_on for r in archive] == sorted(r.received_on for r in archive)
    files = render_files(*published(seed=2))
    text = b"".join(files.values()).decode()
    for ballot in ballots:
        assert ballot.response_id not in text
    assert "p1" not in files[ANSWERS_CSV].decode()  # respondent keys of the stream are p0…p59


def test_the_audit_recomputes_the_published_rankings_byte_for_byte() -> None:
    files = render_files(*published(seed=3))
    recomputed = recompute(files)
    assert set(recomputed) == {OPEN_CSV, "a-ameliorer.csv", SUGGESTIONS_CSV, RESULTS_JSON}
    for name, data in recomputed.items():
        assert data == files[name], name


def test_a_changed_archive_no_longer_matches() -> None:
    files = render_files(*published(seed=3))
    lines = files[ANSWERS_CSV].decode().splitlines(keepends=True)
    tampered = dict(files, **{ANSWERS_CSV: "".join(lines[:-1]).encode()})
    assert recompute(tampered)[OPEN_CSV] != files[OPEN_CSV] or recompute(tampered)[SUGGESTIONS_CSV] != files[
        SUGGESTIONS_CSV
    ] or recompute(tampered)["a-ameliorer.csv"] != files["a-ameliorer.csv"]  # fmt: skip


def test_rendering_is_deterministic() -> None:
    assert render_files(*published(seed=4)) == render_files(*published(seed=4))


def test_cells_a_spreadsheet_would_run_are_escaped_and_read_back() -> None:
    for text in [*TITLES, "-1", "@cmd", "\tx", "plain", ""]:
        escaped = safe_cell(text)
        assert not escaped.startswith(("=", "+", "-", "@", "\t"))
        assert unsafe_cell(escaped) == text
    files = render_files(*published(seed=0))
    for row in csv.reader(io.StringIO(files[SUGGESTIONS_CSV].decode())):
        assert not any(cell.startswith(("=", "+", "@")) for cell in row)


def test_the_data_package_validates(tmp_path: Path) -> None:
    from frictionless import validate

    files = render_files(*published(seed=5))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = validate(str(tmp_path / DATAPACKAGE_JSON))
    assert report.valid, report.flatten(["resource", "rowNumber", "fieldName", "type", "note"])
    package = json.loads(files[DATAPACKAGE_JSON])
    assert {r["path"] for r in package["resources"]} <= set(files)
    assert len(report.tasks) == len(package["resources"]) == 10
    # and the validator does catch a broken file: a count that is not an integer
    (tmp_path / OPEN_CSV).write_bytes(files[OPEN_CSV].replace(b"\r\n1,", b"\r\none,", 1))
    assert not validate(str(tmp_path / DATAPACKAGE_JSON)).valid


def test_the_report_is_french_first_with_english_and_charts() -> None:
    html = render_files(*published(seed=6))[REPORT_HTML].decode()
    assert html.startswith("<!doctype html>")
    assert 'lang="fr"' in html
    assert "Jeux de données à ouvrir en priorité" in html
    assert 'lang="en"' in html
    assert html.count("<rect") > 5
    assert "Participation dans le temps" in html
    assert "<script" not in html


def test_the_audit_command_reports_a_match_and_a_tampered_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.publisher.audit import main

    files = render_files(*published(seed=7))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert main([str(tmp_path)]) == 0
    assert "MATCH" in capsys.readouterr().out
    (tmp_path / OPEN_CSV).write_bytes(files[OPEN_CSV].replace(b",", b";", 1))
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {OPEN_CSV}" in out


def test_a_set_of_files_mixing_two_versions_is_told_apart() -> None:
    from services.publisher.audit import consistent

    files = render_files(*published(seed=5))
    assert consistent(files)
    newer = render_files(*published(seed=6))
    assert not consistent(dict(files, **{OPEN_CSV: newer[OPEN_CSV]}))
    assert consistent({OPEN_CSV: files[OPEN_CSV]})  # no data package: nothing to hold the set to

"""Published rank intervals: the columns, the method, the report, and the audit recomputing them."""

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

from services.publisher.archive import counted, published_results
from services.publisher.audit import audit
from services.publisher.files import (
    DATAPACKAGE_JSON,
    IMPROVE_CSV,
    METHOD_JSON,
    OPEN_CSV,
    REPORT_HTML,
    RESULTS_JSON,
    SUGGESTIONS_CSV,
    read_method,
    render_files,
)
from shared.contracts import ResultsPublished
from shared.uncertainty import seed_of
from tests.publisher_builders import published

RESAMPLES = 200


def with_intervals(seed: int) -> tuple:  # type: ignore[type-arg]
    results, archive, method, report = published(seed)
    return results, archive, replace(method, resamples=RESAMPLES), report


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_published_rankings_carry_rank_intervals_and_tie_groups() -> None:
    files = render_files(*with_intervals(seed=4))
    for name in (OPEN_CSV, IMPROVE_CSV, SUGGESTIONS_CSV):
        found = rows(files[name])
        assert found, name
        assert list(found[0])[:5] == ["rank", "rank_low", "rank_high", "too_close_to_call", "tie_group"]
        groups: dict[str, int] = {}
        for row in found:
            assert int(row["rank_low"]) <= int(row["rank"]) <= int(row["rank_high"])
            assert row["too_close_to_call"] in {"true", "false"}
            groups[row["tie_group"]] = groups.get(row["tie_group"], 0) + 1
        for row in found:
            assert (row["too_close_to_call"] == "true") == (groups[row["tie_group"]] > 1)
    opened = rows(files[OPEN_CSV])
    assert {"rank_equal_weights", "rank_essential_only"} <= set(opened[0])
    assert sorted(int(r["rank_equal_weights"]) for r in opened) == list(range(1, len(opened) + 1))
    assert "rank_equal_weights" not in rows(files[IMPROVE_CSV])[0]


def test_the_method_states_the_bootstrap_and_the_weightings() -> None:
    results, archive, method, report = with_intervals(seed=4)
    files = render_files(results, archive, method, report)
    doc = json.loads(files[METHOD_JSON])
    bootstrap = doc["uncertainty"]
    assert (bootstrap["resamples"], bootstrap["level"], bootstrap["seed"]) == (RESAMPLES, 90, seed_of("c1"))
    assert bootstrap["weightings"] == {
        "equal_weights": {"essential": 1, "important": 1, "useful": 1},
        "essential_only": {"essential": 1, "important": 0, "useful": 0},
    }
    assert bootstrap["statement"]["fr"]
    assert bootstrap["statement"]["en"]
    assert read_method(files[METHOD_JSON])[2] == method
    served = ResultsPublished.model_validate_json(files[RESULTS_JSON])
    assert served.method.uncertainty is not None
    assert served.method.uncertainty.resamples == RESAMPLES
    assert all(row.rank_interval is not None for row in served.open)


def test_the_audit_recomputes_the_intervals_byte_for_byte() -> None:
    files = render_files(*with_intervals(seed=5))
    checks = audit(files)
    assert all(ok for _, ok, _ in checks), [c for c in checks if not c[1]]
    assert {name for name, ok, why in checks if "byte for byte" in why} >= {OPEN_CSV, IMPROVE_CSV, RESULTS_JSON}


def test_a_tampered_interval_is_caught() -> None:
    files = render_files(*with_intervals(seed=5))
    lines = files[OPEN_CSV].split(b"\r\n")
    head = lines[1].split(b",")
    head[2] = str(int(head[2]) + 1).encode()  # rank_high
    tampered = dict(files, **{OPEN_CSV: b"\r\n".join([lines[0], b",".join(head), *lines[2:]])})
    failed = {name for name, ok, _ in audit(tampered) if not ok}
    assert OPEN_CSV in failed


def test_files_published_before_intervals_render_in_their_own_form() -> None:
    results, archive, method, report = published(seed=4)
    assert method.resamples is None
    files = render_files(results, archive, method, report)
    assert b"rank_low" not in files[OPEN_CSV]
    assert b"rank_interval" not in files[RESULTS_JSON]
    assert b"uncertainty" not in files[METHOD_JSON]
    assert all(ok for _, ok, _ in audit(files))


def test_the_report_shows_error_bars_and_says_which_rows_cannot_be_told_apart() -> None:
    results, archive, method, report = with_intervals(seed=4)
    files = render_files(results, archive, method, report)
    html = files[REPORT_HTML].decode()
    assert "Intervalles de rang à 90 %" in html
    assert "<script" not in html
    public = render_files(results, archive, method, report)[RESULTS_JSON]
    served = ResultsPublished.model_validate_json(public)
    close = [r for r in served.open[:15] if r.too_close_to_call]
    if close:
        assert "ne peuvent être départagés" in html
        assert f"« {close[0].title or close[0].key} »" in html
    else:
        assert "chacun se distingue de ses voisins" in html
    assert html.index("ne peuvent être départagés" if close else "chacun se distingue") < html.index(
        "cannot be told apart" if close else "each stands apart"
    )


def test_the_checks_at_the_close_do_not_run_the_bootstrap() -> None:
    results, archive, method, _ = with_intervals(seed=4)
    checked = published_results(results, counted(archive, ()), method)
    assert all(row.rank_interval is None for row in checked.open)


def test_the_data_package_with_intervals_validates(tmp_path: Path) -> None:
    from frictionless import validate

    files = render_files(*with_intervals(seed=5))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = validate(str(tmp_path / DATAPACKAGE_JSON))
    assert report.valid, report.flatten(["resource", "rowNumber", "fieldName", "type", "note"])
    fields = json.loads(files[DATAPACKAGE_JSON])["resources"][0]["schema"]["fields"]
    assert [f["name"] for f in fields[:5]] == ["rank", "rank_low", "rank_high", "too_close_to_call", "tie_group"]

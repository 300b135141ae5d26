"""Ballot stuffing in the published results: the filtered rankings, the archive that keeps everyone
marked with their exclusion, `exclusions.csv`, `methode.json`, the report and the audit; files
published before exclusions existed. Hand-written fakes, no broker."""

import asyncio
import csv
import hashlib
import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.publisher.archive import (
    FollowUp,
    Method,
    archive_of,
    compute_rankings,
    consultation_of,
    counted,
    disagreements,
    public_archive_of,
    published_results,
    results_of,
    same_totals,
)
from services.publisher.audit import audit
from services.publisher.closing import PIPELINE, Closer, PublisherMetrics, ResultsDisagree
from services.publisher.domain import Offsets
from services.publisher.files import (
    DATAPACKAGE_JSON,
    EXCLUSIONS_CSV,
    INPUT_FILES,
    METHOD_JSON,
    OPEN_CSV,
    REPORT_HTML,
    RESPONDENTS_CSV,
    RESULTS_JSON,
    datapackage_json,
    recompute,
    render_files,
    respondents_csv,
    results_json,
)
from services.publisher.report import ReportRenderer
from services.publisher.republishing import Republisher
from services.scoring.domain import DEFAULT_WEIGHTS, counted_ballot, rank
from shared.contracts import (
    RankingKind,
    RankingView,
    ResultsPublished,
)
from shared.topics import EXCLUSIONS, SCORING_GROUP
from tests.publisher_builders import (
    DATASETS,
    DETECTION,
    FakeEmitter,
    FakeResultsRepository,
    FakeScoring,
    closer,
    consultation,
    marked_ballots,
    random_stream,
    scored,
    stuffing,
)


def stuffed(seed: int, min_cell: int = 5) -> tuple:  # type: ignore[type-arg]
    """What the close renders the files from, for a consultation with clusters set aside: the published
    results, the public archive, the method, the report; and the results frozen at the close."""
    cluster_of, exclusions = stuffing(seed)
    ballots = marked_ballots(seed, cluster_of)
    everyone = archive_of(ballots)
    archive = counted(everyone, exclusions)
    method = Method(DEFAULT_WEIGHTS, "test-version", min_cell)
    rankings = compute_rankings(archive, DATASETS, method.weights)
    frozen = results_of(
        "event-1", consultation(), len(archive), method, rankings, len(everyone) - len(archive), exclusions
    )
    public = public_archive_of(ballots, "c1", min_cell)
    return (published_results(frozen, public, method), public, method, ReportRenderer()), frozen


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def checks(files: Mapping[str, bytes]) -> dict[str, bool]:
    return {name: ok for name, ok, _ in audit(files)}


def with_package(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files with a data package whose hashes hold for them: tampering that also fixes the hashes."""
    package = json.loads(files[DATAPACKAGE_JSON])
    for resource in package["resources"]:
        resource["hash"] = "sha256:" + hashlib.sha256(files[resource["path"]]).hexdigest()
    return dict(files, **{DATAPACKAGE_JSON: json.dumps(package).encode()})


@pytest.mark.parametrize("seed", range(6))
def test_filtered_rankings_equal_the_rankings_of_the_honest_ballots_only(seed: int) -> None:
    cluster_of, exclusions = stuffing(seed)
    ballots = marked_ballots(seed, cluster_of)
    assert any(b.exclusion for b in ballots)
    assert not all(b.exclusion for b in ballots)
    filtered = compute_rankings(counted(archive_of(ballots), exclusions), DATASETS, DEFAULT_WEIGHTS)
    honest_stream = [m for m in random_stream(seed) if m.response.respondent_key not in cluster_of]
    honest = scored(honest_stream)
    assert filtered == compute_rankings(
        archive_of(counted_ballot(b) for b in honest.ballots.values()), DATASETS, DEFAULT_WEIGHTS
    )
    theirs = {}
    for kind in RankingKind:
        stored = honest.stored_rows(kind)
        if kind is RankingKind.SUGGESTIONS:
            stored = [r.__class__(r.key, r.key if r.key == "d3" else None, None, r.counts) for r in stored]
        theirs[kind] = rank(kind, stored, DEFAULT_WEIGHTS)
    assert disagreements(filtered, theirs) == []
    # A cluster that is not listed (cleared, or never excluded) sets nobody aside.
    assert counted(archive_of(ballots), []) == archive_of(ballots)


@pytest.mark.parametrize("seed", range(3))
def test_the_published_results_count_the_honest_respondents_and_the_archive_keeps_everyone(seed: int) -> None:
    inputs, frozen = stuffed(seed)
    files = render_files(*inputs)
    public = ResultsPublished.model_validate_json(files[RESULTS_JSON])
    assert same_totals(frozen, public) == []
    everyone = rows(files[RESPONDENTS_CSV])
    set_aside = [r for r in everyone if r["exclusion"]]
    assert (public.respondents, public.excluded_respondents) == (len(everyone) - len(set_aside), len(set_aside))
    assert public.excluded_respondents == sum(e.respondents for e in frozen.exclusions) > 0
    assert [e.cluster_id for e in public.exclusions] == sorted(e.cluster_id for e in frozen.exclusions)
    for published, at_close in zip(public.exclusions, frozen.exclusions, strict=True):
        assert published.first_at == at_close.first_at.replace(second=0, microsecond=0)  # to the minute
        assert (published.reason, published.signals, published.respondents) == (
            at_close.reason,
            at_close.signals,
            at_close.respondents,
        )
    lines = rows(files[EXCLUSIONS_CSV])
    assert list(lines[0]) == ["cluster_id", "signals", "first_at", "last_at", "respondents", "reason", "datasets"]
    assert {line["cluster_id"]: int(line["respondents"]) for line in lines} == {
        e.cluster_id: e.respondents for e in frozen.exclusions
    }
    assert all(line["first_at"].endswith(":00Z") for line in lines)
    assert "'-40 réponses identiques" in files[EXCLUSIONS_CSV].decode() or len(lines) == 1  # escaped
    assert EXCLUSIONS_CSV in INPUT_FILES


def test_rendering_with_exclusions_is_deterministic() -> None:
    assert render_files(*stuffed(4)[0]) == render_files(*stuffed(4)[0])


@pytest.mark.parametrize("seed", [None, 5])
def test_the_data_package_validates_with_and_without_exclusions(tmp_path: Path, seed: int | None) -> None:
    from frictionless import validate

    from tests.publisher_builders import published

    files = render_files(*(stuffed(seed)[0] if seed is not None else published(seed=5)))
    if seed is None:
        assert files[EXCLUSIONS_CSV].count(b"\r\n") == 1  # header only
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = validate(str(tmp_path / DATAPACKAGE_JSON))
    assert report.valid, report.flatten(["resource", "rowNumber", "fieldName", "type", "note"])
    resources = {r["path"]: r for r in json.loads(files[DATAPACKAGE_JSON])["resources"]}
    assert "non recalculée" in resources[EXCLUSIONS_CSV]["description"]
    assert resources[RESPONDENTS_CSV]["schema"]["fields"][-1]["name"] == "exclusion"
    if seed is not None:  # an exclusion that names no cluster listed breaks the data package's foreign key
        (tmp_path / RESPONDENTS_CSV).write_bytes(files[RESPONDENTS_CSV].replace(b",burst-a\r\n", b",nobody\r\n", 1))
        assert not validate(str(tmp_path / DATAPACKAGE_JSON)).valid


def test_the_audit_recomputes_the_filtered_rankings_and_fails_when_exclusions_are_tampered_with() -> None:
    files = render_files(*stuffed(1)[0])
    found = checks(files)
    assert all(found.values()), found
    assert found[f"{EXCLUSIONS_CSV} / {RESPONDENTS_CSV}"]
    for name, data in recompute(files).items():
        assert data == files[name], name
    why = {name: text for name, _, text in audit(files)}
    assert why[EXCLUSIONS_CSV].startswith("input, not recomputed")

    lines = files[EXCLUSIONS_CSV].split(b"\r\n")
    removed = dict(files, **{EXCLUSIONS_CSV: b"\r\n".join(lines[:1] + lines[2:])})
    assert not checks(removed)[EXCLUSIONS_CSV]  # the hash
    found = checks(with_package(removed))  # even with hashes that hold, the rankings and counts do not
    assert not found[f"{EXCLUSIONS_CSV} / {RESPONDENTS_CSV}"]
    assert not all(found[name] for name in (OPEN_CSV, RESULTS_JSON))

    cells = lines[1].split(b",")  # cluster_id, signals, first_at, last_at, respondents, …: no comma in these
    cells[4] = str(int(cells[4]) + 1).encode()
    recounted = b"\r\n".join([lines[0], b",".join(cells), *lines[2:]])
    assert not checks(with_package(dict(files, **{EXCLUSIONS_CSV: recounted})))[f"{EXCLUSIONS_CSV} / {RESPONDENTS_CSV}"]

    unmarked = files[RESPONDENTS_CSV].replace(b"," + cells[0] + b"\r\n", b",\r\n", 1)
    found = checks(with_package(dict(files, **{RESPONDENTS_CSV: unmarked})))
    assert not found[f"{EXCLUSIONS_CSV} / {RESPONDENTS_CSV}"]
    assert not found[RESULTS_JSON]


def test_the_audit_command_fails_on_a_removed_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from services.publisher.audit import main

    files = render_files(*stuffed(2)[0])
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert main([str(tmp_path)]) == 0
    assert "MATCH" in capsys.readouterr().out
    (tmp_path / EXCLUSIONS_CSV).write_bytes(files[EXCLUSIONS_CSV].split(b"\r\n")[0] + b"\r\n")
    assert main([str(tmp_path)]) == 1
    assert f"FAIL {EXCLUSIONS_CSV}" in capsys.readouterr().out


def test_method_json_states_the_rule_its_settings_and_what_was_set_aside_per_reason() -> None:
    inputs, frozen = stuffed(3)
    detection = json.loads(render_files(*inputs)[METHOD_JSON])["detection"]
    expected: dict[str, int] = {}
    for e in frozen.exclusions:
        expected[e.reason] = expected.get(e.reason, 0) + e.respondents
    assert detection["set_aside"] == {"by_reason": expected, "total": frozen.excluded_respondents}
    assert detection["settings"] == DETECTION.model_dump(mode="json")
    assert detection["settings_of"] == {}
    for word in ("network_burst", "same_answers", "fast_fill", "motif public", "filtrés", "archive"):
        assert word in detection["fr"], word
    for word in ("network_burst", "same_answers", "fast_fill", "public reason", "filtered", "archive"):
        assert word in detection["en"], word

    from tests.publisher_builders import published

    none = json.loads(render_files(*published(seed=3))[METHOD_JSON])["detection"]
    assert (none["settings"], none["set_aside"]) == (None, {"by_reason": {}, "total": 0})


def test_clusters_flagged_under_other_settings_keep_theirs_in_the_published_files() -> None:
    (results, public, method, report), _ = stuffed(0)
    assert len(results.exclusions) > 1, "the seed has several clusters"
    older = results.exclusions[0].model_copy(update={"settings": DETECTION.model_copy(update={"burst_min": 50})})
    results = results.model_copy(update={"exclusions": [older, *results.exclusions[1:]]})
    files = render_files(results, public, method, report)
    detection = json.loads(files[METHOD_JSON])["detection"]
    assert detection["settings_of"]  # the clusters whose settings are not those of the latest flagged
    for e in results.exclusions:
        assert detection["settings_of"].get(e.cluster_id, detection["settings"]) == e.settings.model_dump(mode="json")
    assert all(checks(files).values())
    assert ResultsPublished.model_validate_json(files[RESULTS_JSON]).exclusions[0].settings.burst_min == 50


def test_the_report_says_how_many_answers_were_set_aside_and_why() -> None:
    inputs, frozen = stuffed(1)
    html = render_files(*inputs)[REPORT_HTML].decode()
    n = frozen.excluded_respondents
    assert f"<strong>{n}</strong> réponses ont été mises à l'écart des classements" in html
    assert f"{n} answers were set aside from the rankings" in html
    for e in frozen.exclusions:
        assert f"« {e.reason} »" in html
    assert html.index("mises à l'écart") < html.index("answers were set aside")  # French first

    from tests.publisher_builders import published

    html = render_files(*published(seed=1))[REPORT_HTML].decode()
    assert "Aucune réponse n'a été mise à l'écart des classements." in html
    assert "No answer was set aside from the rankings." in html


def test_files_published_before_exclusions_are_still_audited_and_read() -> None:
    from tests.publisher_builders import published

    results, archive, method, report = published(seed=2)
    files = render_files(results, archive, method, report)
    old = {name: data for name, data in files.items() if name != EXCLUSIONS_CSV}
    old[RESPONDENTS_CSV] = respondents_csv(archive, with_exclusion=False)
    old[RESULTS_JSON] = results_json(
        ResultsPublished.model_validate_json(files[RESULTS_JSON]), with_exclusions=False, with_intervals=False
    )
    method_doc = json.loads(files[METHOD_JSON])
    del method_doc["detection"], method_doc["inputs"]["exclusions"]
    old[METHOD_JSON] = json.dumps(method_doc).encode()
    package = json.loads(datapackage_json(consultation_of(results), files))
    package["resources"] = [r for r in package["resources"] if r["path"] != EXCLUSIONS_CSV]
    old[DATAPACKAGE_JSON] = json.dumps(package).encode()
    old = with_package(old)
    assert b"excluded_respondents" not in old[RESULTS_JSON]
    found = checks(old)
    assert all(found.values()), found
    served = ResultsPublished.model_validate_json(old[RESULTS_JSON])
    assert (served.excluded_respondents, served.exclusions) == (0, [])


async def test_files_published_before_exclusions_are_republished_in_the_new_form() -> None:
    from tests.publisher_builders import frozen, published

    results, archive, method, report = published(seed=3)
    files = render_files(results, archive, method, report)
    old = {name: data for name, data in files.items() if name != EXCLUSIONS_CSV}
    old[RESPONDENTS_CSV] = respondents_csv(archive, with_exclusion=False)
    repository = FakeResultsRepository()
    at_close = frozen(seed=3)[0].model_copy(update={"exclusions": []})
    await repository.save(at_close, old)
    republisher = Republisher(
        repository, lambda _: FollowUp(), report, PublisherMetrics(CollectorRegistry()), logging.getLogger("test")
    )
    republisher.changed("c1")
    await republisher.run_once()
    assert republisher.pending == frozenset()
    assert repository.saved["c1"][1] == files


class Progress:
    """Offsets of the pipeline: the exclusions topic empty unless told, scoring caught up unless told."""

    def __init__(self, exclusions_end: int = 0, applied: int = 0) -> None:
        self.ends = {EXCLUSIONS: exclusions_end}
        self.applied = applied

    async def end_offsets(self, topic: str) -> Offsets:
        end = self.ends.get(topic, 10)
        return {(topic, 0): end} if end else {}

    async def committed(self, group: str, topic: str) -> Offsets:
        if topic == EXCLUSIONS:
            return {(topic, 0): self.applied} if self.applied else {}
        return {(topic, 0): 10}


async def test_the_watermark_waits_for_scoring_to_apply_every_decision_and_tolerates_an_empty_topic() -> None:
    assert (EXCLUSIONS, SCORING_GROUP) in PIPELINE

    def with_progress(progress: Progress) -> Closer:
        flow = closer(FakeScoring(1), FakeEmitter(), FakeResultsRepository())
        flow._progress = progress
        return flow

    await asyncio.wait_for(with_progress(Progress()).wait_until_scored(), 1)  # empty: nothing to wait for
    progress = Progress(exclusions_end=3, applied=2)
    waiting = asyncio.create_task(with_progress(progress).wait_until_scored())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    progress.applied = 3
    await asyncio.wait_for(waiting, 1)


async def test_the_close_publishes_the_filtered_rankings_with_the_clusters_set_aside() -> None:
    cluster_of, exclusions = stuffing(2)
    scoring = FakeScoring(2, cluster_of=cluster_of, exclusions=list(reversed(exclusions)))
    emitter, repository = FakeEmitter(), FakeResultsRepository()
    await closer(scoring, emitter, repository).tick()
    [results] = emitter.emitted
    assert results.excluded_respondents == len(cluster_of) == sum(e.respondents for e in exclusions)
    assert results.respondents == len(scoring.store.ballots) - len(cluster_of)
    assert results.exclusions == sorted(exclusions, key=lambda e: e.cluster_id)  # as scoring gave them, frozen
    files = repository.saved["c1"][1]
    assert all(checks(files).values())
    assert sum(1 for r in rows(files[RESPONDENTS_CSV]) if r["exclusion"]) == len(cluster_of)


@pytest.mark.parametrize("fault", ["miscounted", "unlisted", "raw view"])
async def test_nothing_is_published_when_the_clusters_set_aside_disagree(fault: str) -> None:
    cluster_of, exclusions = stuffing(2)
    if fault == "miscounted":
        exclusions[0] = exclusions[0].model_copy(update={"respondents": exclusions[0].respondents + 1})
    if fault == "unlisted":  # its respondents marked, the cluster not among those scoring lists
        exclusions = exclusions[1:]
    view = RankingView.RAW if fault == "raw view" else RankingView.FILTERED
    scoring = FakeScoring(2, cluster_of=cluster_of, exclusions=exclusions, view=view)
    emitter, repository = FakeEmitter(), FakeResultsRepository()
    with pytest.raises(ResultsDisagree):
        await closer(scoring, emitter, repository).tick()
    assert (emitter.emitted, repository.saved) == ([], {})

"""Nothing published identifies anyone: the public archive (order, weeks, pooled profiles, no free
text of small groups), suppressed breakdown cells, determinism, and the audit recomputing it all."""

import csv
import hashlib
import io
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.publisher.archive import (
    Method,
    archive_of,
    compute_rankings,
    follow_up_of,
    pooled_profiles,
    public_archive_of,
    published_results,
    results_of,
    same_totals,
)
from services.publisher.files import (
    ANSWERS_CSV,
    DATAPACKAGE_JSON,
    ENGAGEMENTS_CSV,
    IMPROVE_CSV,
    METHOD_JSON,
    OPEN_CSV,
    RANKING_FILES,
    RESPONDENTS_CSV,
    RESULTS_JSON,
    SUGGESTIONS_CSV,
    recompute,
    render_files,
)
from services.publisher.report import ReportRenderer
from services.scoring.domain import DEFAULT_WEIGHTS
from shared.contracts import (
    CommitmentKind,
    CountedBallot,
    CountedImprovement,
    CountedOpen,
    CountedSuggestion,
    ImprovementKind,
    Priority,
    Profile,
    RankingKind,
)
from shared.uncertainty import pseudonymous_order
from tests.publisher_builders import DATASETS, commitment, consultation, frozen, published

MONDAY = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
SECRET_TITLE = "Les carnets de ma grand-tante Mireille"  # typed by two respondents only


def ballot(n: int, profile: Profile, days: float = 0.0, suggestions: tuple[tuple[str, str], ...] = ()) -> CountedBallot:
    return CountedBallot(
        response_id=f"resp-{n:04d}",
        received_at=MONDAY + timedelta(days=days),
        profile=profile,
        submissions=1 + n % 2,
        open=[CountedOpen(dataset_id="d0", priority=Priority.ESSENTIAL if n % 3 else Priority.USEFUL)],
        improve=[CountedImprovement(dataset_id="d1", kinds=[ImprovementKind.API_ACCESS])] if n % 4 == 0 else [],
        suggestions=[
            CountedSuggestion(group_key=key, dataset_id=key.removeprefix("dataset:") if "dataset:" in key else None,
                              title=title)
            for key, title in suggestions
        ],
    )  # fmt: skip


def small_consultation() -> list[CountedBallot]:
    """12 researchers, 6 journalists, 2 students, 1 tourism; a large and a small typed group, a small matched one."""
    profiles = [Profile.RESEARCHER] * 12 + [Profile.JOURNALIST] * 6 + [Profile.STUDENT] * 2 + [Profile.TOURISM]
    ballots = []
    for n, profile in enumerate(profiles):
        suggestions: list[tuple[str, str]] = []
        if n < 7:
            suggestions.append(
                ("title:registre des fanfares", "Registre des fanfares" if n < 4 else "registre fanfares")
            )
        if n in (3, 15):
            suggestions.append(("title:les carnets de ma grand tante mireille", SECRET_TITLE))
        if n == 8:
            suggestions.append(("dataset:d3", "le jeu trois de Mireille"))
        ballots.append(ballot(n, profile, days=n * 0.7, suggestions=tuple(suggestions)))
    return ballots


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def breakdown_columns(header: list[str]) -> list[str]:
    return [c for c in header if c.startswith(("respondents_", "score_", "improvement_"))]


def test_respondents_are_numbered_by_a_hash_not_in_receipt_order_the_same_whatever_the_input_order() -> None:
    ballots = small_consultation()
    public = public_archive_of(ballots, "c1", 5)
    assert [r.number for r in public] == list(range(1, len(ballots) + 1))
    by_hash = sorted(ballots, key=lambda b: pseudonymous_order("c1", b.response_id))
    assert [r.submissions for r in public] == [b.submissions for b in by_hash]
    assert [r.received_on for r in public] != sorted(r.received_on for r in public)  # not receipt order
    assert public_archive_of(reversed(ballots), "c1", 5) == public
    assert public_archive_of(ballots, "c2", 5) != public  # another consultation, another order
    assert pseudonymous_order("c1", "resp-0001") == hashlib.sha256(b"c1\nresp-0001").hexdigest()


def test_the_day_is_published_as_the_monday_of_its_week() -> None:
    ballots = small_consultation()
    public = public_archive_of(ballots, "c1", 5)
    assert {r.received_on.weekday() for r in public} == {0}
    days = [b.received_at.date() for b in ballots]
    assert (days[0], days[-1]) == (date(2026, 11, 30), date(2026, 12, 14))  # Mondays, two weeks apart
    expected = Counter(day - timedelta(days=day.weekday()) for day in days)
    assert set(expected) == {date(2026, 11, 30), date(2026, 12, 7), date(2026, 12, 14)}
    assert Counter(r.received_on for r in public) == expected
    header = csv_rows(render_files(*published(seed=1))[RESPONDENTS_CSV])[0]
    assert list(header) == ["respondent", "profile", "received_week", "submissions", "exclusion"]


def test_rare_profiles_are_pooled_as_other_and_other_is_never_a_small_cell() -> None:
    public = public_archive_of(small_consultation(), "c1", 5)
    # students (2) and tourism (1) pooled; "other" would have 3: the smallest remaining profile joins it.
    assert Counter(r.profile for r in public) == {Profile.RESEARCHER: 12, Profile.OTHER: 9}
    assert pooled_profiles({Profile.RESEARCHER: 12, Profile.TOURISM: 3, Profile.OTHER: 4}, 5) == {Profile.TOURISM}
    assert pooled_profiles({Profile.RESEARCHER: 12, Profile.JOURNALIST: 5}, 5) == set()
    assert pooled_profiles({Profile.RESEARCHER: 3}, 5) == {Profile.RESEARCHER}  # nothing better to do
    for seed in range(4):
        counts = Counter(r.profile for r in published(seed)[1])
        assert all(n >= 5 for n in counts.values()), counts


def test_small_suggestion_groups_publish_no_typed_word() -> None:
    public = public_archive_of(small_consultation(), "c1", 5)
    answers = [a for r in public for a in r.answers if a.ranking is RankingKind.SUGGESTIONS]
    large = [a for a in answers if a.key == "title:registre des fanfares"]
    assert len(large) == 7
    assert {a.title for a in large} == {"Registre des fanfares"}  # the group's title, the one most typed
    secret_key = "groupe-" + hashlib.sha256(b"title:les carnets de ma grand tante mireille").hexdigest()[:10]
    assert [(a.key, a.title) for a in answers if a.key.startswith("groupe-")] == [(secret_key, "")] * 2
    assert [(a.key, a.dataset_id, a.title) for a in answers if a.key == "dataset:d3"] == [("dataset:d3", "d3", "")]
    # the internal archive keeps them, for the cross-check
    internal = [a.title for r in archive_of(small_consultation()) for a in r.answers]
    assert SECRET_TITLE in internal


def test_no_published_breakdown_cell_is_between_1_and_min_cell_minus_1() -> None:
    for seed in range(4):
        files = render_files(*published(seed))
        suppressed = 0
        for name in RANKING_FILES.values():
            rows = csv_rows(files[name])
            for row in rows:
                for column in breakdown_columns(list(row)):
                    assert row[column] == "s" or row[column] == "0" or int(row[column]) >= 5, (name, column, row)
                    suppressed += row[column] == "s"
        assert suppressed > 0, "the random consultation has small cells: some must be suppressed"
        for kind in ("open", "improve", "suggestions"):
            for row in json.loads(files[RESULTS_JSON])[kind]:
                tallies: list[dict[str, Any]] = list(row["by_profile"].values())
                cells = [t["respondents"] for t in tallies] + [t["score"] for t in tallies]
                cells += [*row["by_priority"].values(), *row["by_improvement"].values()]
                assert all(n == 0 or n >= 5 for n in cells), row


def test_suppression_keeps_totals_and_ranks_and_follows_min_cell() -> None:
    results, _, _ = frozen(seed=2)
    public = published(seed=2)[0]
    assert same_totals(results, public) == []
    for kind in ("open", "improve"):
        assert [(r.rank, r.key, r.score, r.respondents) for r in getattr(public, kind)] == [
            (r.rank, r.key, r.score, r.respondents) for r in getattr(results, kind)
        ]
    loose = render_files(*published(seed=2, min_cell=1))
    assert b",s," not in loose[OPEN_CSV] + loose[IMPROVE_CSV] + loose[SUGGESTIONS_CSV]
    assert json.loads(loose[METHOD_JSON])["publication"]["min_cell"] == 1
    strict = csv_rows(render_files(*published(seed=2, min_cell=1000))[OPEN_CSV])
    for row in strict:
        assert {row[c] for c in breakdown_columns(list(row))} <= {"s", "0"}
        assert int(row["score"]) > 0


def test_the_suppression_marker_is_declared_and_the_package_validates(tmp_path: Path) -> None:
    from frictionless import validate

    files = render_files(*published(seed=1))
    resources = {r["path"]: r for r in json.loads(files[DATAPACKAGE_JSON])["resources"]}
    for name in RANKING_FILES.values():
        assert resources[name]["schema"]["missingValues"] == ["", "s"]
        assert b",s" in files[name]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = validate(str(tmp_path / DATAPACKAGE_JSON))
    assert report.valid, report.flatten(["resource", "rowNumber", "fieldName", "type", "note"])
    rules = json.loads(files[METHOD_JSON])["publication"]
    assert (rules["min_cell"], rules["suppressed"]) == (5, "s")
    assert "received_week" in rules["en"]
    assert "groupe-" in rules["fr"]


def test_the_files_are_the_same_bytes_on_every_replica_and_restart() -> None:
    ballots = frozen(seed=3)[1]
    again = list(reversed(ballots))
    first, second = published(seed=3), published(seed=3)
    assert render_files(*first) == render_files(*second)
    assert public_archive_of(again, "c1", 5) == first[1]


def test_the_audit_recomputes_every_ranking_file_from_the_public_archive_with_the_published_min_cell() -> None:
    for min_cell in (1, 3, 5, 8):
        files = render_files(*published(seed=3, min_cell=min_cell))
        recomputed = recompute(files)
        assert set(recomputed) == {OPEN_CSV, IMPROVE_CSV, SUGGESTIONS_CSV, RESULTS_JSON}
        for name, data in recomputed.items():
            assert data == files[name], (min_cell, name)
    method = json.loads(files[METHOD_JSON])
    method["publication"]["min_cell"] = 3
    changed = recompute(dict(files, **{METHOD_JSON: json.dumps(method).encode()}))
    assert changed[OPEN_CSV] != files[OPEN_CSV]


def test_a_small_suggestion_group_is_published_under_its_public_key_everywhere() -> None:
    ballots = small_consultation()
    method = Method(DEFAULT_WEIGHTS, "v", 5)
    internal = archive_of(ballots)
    results = results_of(
        "e", consultation(), len(internal), method, compute_rankings(internal, DATASETS, DEFAULT_WEIGHTS)
    )
    archive = public_archive_of(ballots, "c1", 5)
    public = published_results(results, archive, method)
    secret_key = "title:les carnets de ma grand tante mireille"
    commitments = [
        commitment("add-secret", CommitmentKind.ADD, secret_key, title="Carnets de famille"),
        commitment("add-fanfares", CommitmentKind.ADD, "title:registre des fanfares"),
    ]
    files = render_files(public, archive, method, ReportRenderer(), follow_up_of(public, commitments, []))
    lines = {line["commitment_id"]: line for line in csv_rows(files[ENGAGEMENTS_CSV])}
    opaque = "groupe-" + hashlib.sha256(secret_key.encode()).hexdigest()[:10]
    row = next(r for r in public.suggestions if r.key == opaque)
    assert (lines["add-secret"]["suggestion_key"], lines["add-secret"]["rank"]) == (opaque, str(row.rank))
    assert row.title is None
    assert row.respondents == 2
    assert lines["add-fanfares"]["suggestion_key"] == "title:registre des fanfares"
    everything = b"".join(files.values()).decode()
    for typed in (SECRET_TITLE, "grand tante", "Mireille", "registre fanfares", "resp-0"):
        assert typed not in everything, typed
    assert "Registre des fanfares" in files[SUGGESTIONS_CSV].decode()
    assert recompute(files) == {n: files[n] for n in recompute(files)}


def test_the_answers_file_says_what_its_title_is() -> None:
    files = render_files(*published(seed=0))
    answers = csv_rows(files[ANSWERS_CSV])
    titled = Counter(a["key"] for a in answers if a["ranking"] == "suggestions" and a["title"])
    sizes = Counter(a["key"] for a in answers if a["ranking"] == "suggestions")
    assert all(sizes[key] >= 5 for key in titled)
    for key, n in sizes.items():
        if n < 5:
            assert key.startswith("groupe-") or key == "d3", key

"""The commitments and approved excerpts in the published files, the report and the Atom feed;
republication when they change, with hand-written fakes."""

import csv
import io
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from prometheus_client import CollectorRegistry

from services.publisher.archive import FollowUp, follow_up_of
from services.publisher.audit import audit
from services.publisher.closing import PublisherMetrics
from services.publisher.feed import ATOM, atom_feed
from services.publisher.files import (
    ANSWERS_CSV,
    DATAPACKAGE_JSON,
    ENGAGEMENTS_CSV,
    EXCERPTS_CSV,
    HISTORY_CSV,
    INPUT_FILES,
    METHOD_JSON,
    OPEN_CSV,
    REPORT_HTML,
    RESPONDENTS_CSV,
    RESULTS_JSON,
    recompute,
    render_files,
)
from services.publisher.report import web_url
from services.publisher.repository import Publication
from services.publisher.republishing import FollowUpInputs, Republisher
from shared.contracts import (
    CommitmentKind,
    CommitmentStatus,
    ExcerptApproved,
    ExcerptKind,
)
from tests.publisher_builders import FakeResultsRepository, commitment, frozen, published
from tests.scoring_builders import T0

MARKER = "Zanzibar"
DAY = timedelta(days=1)


def excerpt(excerpt_id: str, text: str, approved: bool = True, cid: str = "c1") -> ExcerptApproved:
    return ExcerptApproved(
        event_id=f"x-{excerpt_id}",
        occurred_at=T0 + 70 * DAY,
        consultation_id=cid,
        excerpt_id=excerpt_id,
        kind=ExcerptKind.IMPROVEMENT,
        dataset_id="d5",
        title="Jeu 5",
        text=text,
        approved=approved,
    )


COMMITMENTS = [
    commitment("open-d7", CommitmentKind.OPEN, "d7"),  # rank 3 of "open" (seed 3)
    commitment("open-d1", CommitmentKind.OPEN, "d1", (CommitmentStatus.PLANNED, CommitmentStatus.IN_PROGRESS)),
    commitment("open-zz", CommitmentKind.OPEN, "d-not-ranked"),
    commitment(
        "add-fre",
        CommitmentKind.ADD,
        "title:fré",
        (CommitmentStatus.PLANNED, CommitmentStatus.DONE),
        done_url="https://data.culture.gouv.fr/frequentation",
    ),
    commitment("improve-d5", CommitmentKind.IMPROVE, "d5", title="=HYPERLINK(1)"),
    commitment("elsewhere", CommitmentKind.OPEN, "d1", cid="c2"),
]
EXCERPTS = [
    excerpt("x2", "Une mise à jour mensuelle aiderait."),
    excerpt("x1", f"Mon voisin {MARKER} m'a dit…", approved=False),
    excerpt("x3", "Ailleurs.", cid="c2"),
]


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def rendered(follow_up: FollowUp | None = None) -> dict[str, bytes]:
    results, archive, method, report = published(seed=3)
    return render_files(results, archive, method, report, follow_up or follow_up_of(results, COMMITMENTS, EXCERPTS))


def test_each_commitment_carries_its_rank_score_and_respondents_at_the_close_in_order() -> None:
    results = published(seed=3)[0]
    lines = rows(rendered()[ENGAGEMENTS_CSV])
    assert [line["commitment_id"] for line in lines] == ["open-d1", "open-d7", "open-zz", "improve-d5", "add-fre"]
    by_id = {line["commitment_id"]: line for line in lines}
    for line, row in [
        (by_id["open-d7"], results.open[2]),
        (by_id["open-d1"], results.open[0]),
        (by_id["improve-d5"], results.improve[0]),
        (by_id["add-fre"], results.suggestions[5]),
    ]:
        assert (line["rank"], line["score"], line["respondents"]) == (
            str(row.rank),
            str(row.score),
            str(row.respondents),
        )
    assert (by_id["open-zz"]["rank"], by_id["open-zz"]["score"], by_id["open-zz"]["respondents"]) == ("", "", "")
    assert by_id["open-d1"]["status"] == "in_progress"
    assert by_id["open-d1"]["status_since"] == "2027-02-10T09:00:00Z"  # the second step, T0 + 71 days
    assert by_id["add-fre"]["suggestion_key"] == "title:fré"
    assert by_id["add-fre"]["done_url"] == "https://data.culture.gouv.fr/frequentation"
    assert by_id["improve-d5"]["title"] == "'=HYPERLINK(1)"  # a formula is never a formula in a spreadsheet
    assert "elsewhere" not in rendered()[ENGAGEMENTS_CSV].decode()


def test_the_history_has_one_line_per_status_change() -> None:
    lines = rows(rendered()[HISTORY_CSV])
    assert [(line["commitment_id"], line["status"]) for line in lines] == [
        ("open-d1", "planned"),
        ("open-d1", "in_progress"),
        ("open-d7", "planned"),
        ("open-zz", "planned"),
        ("improve-d5", "planned"),
        ("add-fre", "planned"),
        ("add-fre", "done"),
    ]
    assert lines[-1]["note"] == "https://data.culture.gouv.fr/frequentation"
    assert {line["by"] for line in lines} == {"staff"}


def test_only_excerpts_still_approved_are_published_anywhere() -> None:
    files = rendered()
    assert rows(files[EXCERPTS_CSV]) == [
        {
            "excerpt_id": "x2",
            "kind": "improvement",
            "dataset_id": "d5",
            "group_key": "",
            "title": "Jeu 5",
            "text": "Une mise à jour mensuelle aiderait.",
        }
    ]
    assert MARKER.encode() not in b"".join(files.values())
    assert "mise à jour mensuelle" in files[REPORT_HTML].decode()


def test_the_files_are_the_same_bytes_whatever_the_order_the_inputs_arrived_in() -> None:
    results = published(seed=3)[0]
    shuffled = follow_up_of(results, list(reversed(COMMITMENTS)), list(reversed(EXCERPTS)))
    assert rendered(shuffled) == rendered()
    assert rendered() == rendered()


def test_without_commitments_the_three_files_are_headers_only() -> None:
    files = rendered(FollowUp())
    for name in INPUT_FILES:
        assert files[name].count(b"\r\n") == 1, name


def test_the_inputs_change_no_ranking_and_the_audit_lists_them_as_inputs() -> None:
    before, after = rendered(FollowUp()), rendered()
    for name in (OPEN_CSV, RESULTS_JSON, RESPONDENTS_CSV, ANSWERS_CSV, METHOD_JSON):
        assert before[name] == after[name], name
    for name, data in recompute(after).items():
        assert data == after[name], name
    checks = {name: (ok, why) for name, ok, why in audit(after)}
    assert all(ok for ok, _ in checks.values())
    for name in INPUT_FILES:
        assert checks[name][1].startswith("input, not recomputed")
    assert json.loads(after[METHOD_JSON])["inputs"]["commitments"] == ENGAGEMENTS_CSV
    tampered = dict(after, **{ENGAGEMENTS_CSV: after[ENGAGEMENTS_CSV].replace(b"planned", b"done", 1)})
    assert not dict((n, ok) for n, ok, _ in audit(tampered))[ENGAGEMENTS_CSV]


def test_the_data_package_describes_the_three_inputs_and_validates(tmp_path: Path) -> None:
    from frictionless import validate

    files = rendered()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = validate(str(tmp_path / DATAPACKAGE_JSON))
    assert report.valid, report.flatten(["resource", "rowNumber", "fieldName", "type", "note"])
    resources = {r["path"]: r for r in json.loads(files[DATAPACKAGE_JSON])["resources"]}
    for name in INPUT_FILES:
        assert "non recalculée" in resources[name]["description"]
        assert all(f["title"] and " / " in f["description"] for f in resources[name]["schema"]["fields"])
    assert [f["name"] for f in resources[ENGAGEMENTS_CSV]["schema"]["fields"]] == [
        "commitment_id", "kind", "dataset_id", "suggestion_key", "title", "rank", "score", "respondents",
        "service", "target", "status", "status_since", "note_fr", "note_en", "reason", "done_url",
    ]  # fmt: skip


def test_the_report_opens_with_what_the_ministry_will_do() -> None:
    html = rendered()[REPORT_HTML].decode()
    section = html.index("Ce que le ministère va faire")
    assert section < html.index("Répondants par profil")
    assert 'lang="en" class="en">What the ministry will do' in html
    assert html.index("Jeu d1") < html.index("Jeu d7") < html.index("Jeu title:fré")
    assert '<a href="https://data.culture.gouv.fr/frequentation">' in html
    for shown in ("Service des musées", "2027-T2", "En cours"):
        assert shown in html
    assert "<script" not in html
    empty = rendered(FollowUp())[REPORT_HTML].decode()
    assert "pas encore publié d'engagement" in empty


def test_only_web_links_are_links() -> None:
    assert web_url("https://x.fr/a") == "https://x.fr/a"
    assert web_url("javascript:alert(1)") is None
    assert web_url(None) is None


def test_the_atom_feed_has_one_entry_per_status_change_newest_first_with_stable_ids() -> None:
    results = published(seed=3)[0]
    follow_up = follow_up_of(results, COMMITMENTS, EXCERPTS)
    page = "https://example.org/consultations/c1/suivi"
    body = atom_feed(results, follow_up, page, page + ".atom")
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    feed = ET.fromstring(body)  # noqa: S314 (our own output)
    a = f"{{{ATOM}}}"
    assert feed.tag == a + "feed"
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(a + required) is not None, required
    assert (feed.findtext(a + "id") or "").startswith("urn:uuid:")
    assert feed.find(f"{a}link[@rel='self']").get("href") == page + ".atom"  # type: ignore[union-attr]
    entries = feed.findall(a + "entry")
    assert len(entries) == 7  # the history lines of consultation c1
    updated = [e.findtext(a + "updated") or "" for e in entries]
    assert updated == sorted(updated, reverse=True)
    assert feed.findtext(a + "updated") == updated[0]
    ids = [e.findtext(a + "id") for e in entries]
    assert len(set(ids)) == len(ids)
    for entry in entries:
        for required in ("id", "title", "updated", "summary"):
            assert entry.find(a + required) is not None, required
        datetime.fromisoformat((entry.findtext(a + "updated") or "").replace("Z", "+00:00"))
    (done,) = [e for e in entries if "réalisé" in (e.findtext(a + "title") or "")]
    assert done in entries[:2]  # the latest steps, on the same day
    assert done.find(f"{a}link[@rel='related']").get("href") == "https://data.culture.gouv.fr/frequentation"  # type: ignore[union-attr]
    # A later step adds an entry; the earlier entries keep their ids.
    later = [
        *COMMITMENTS[:1],
        commitment("open-d1", CommitmentKind.OPEN, "d1", tuple(CommitmentStatus)[:3]),
        *COMMITMENTS[2:],
    ]
    again = ET.fromstring(atom_feed(results, follow_up_of(results, later, EXCERPTS), page, page + ".atom"))  # noqa: S314
    new_ids = [e.findtext(a + "id") for e in again.findall(a + "entry")]
    assert len(new_ids) == 8
    assert set(ids) < set(new_ids)
    assert MARKER not in body.decode()


# --- republication ---------------------------------------------------------------------------------


async def test_a_changed_commitment_republishes_the_files_once_and_leaves_the_rankings() -> None:
    results, archive, method, report = published(seed=3)
    repository = FakeResultsRepository()
    current = {"commitments": list(COMMITMENTS[:2])}
    # The store keeps the results frozen at the close, in full detail; the files are rendered from the public archive.
    await repository.save(frozen(seed=3)[0], render_files(results, archive, method, report))
    republisher = Republisher(
        repository,
        lambda r: follow_up_of(r, current["commitments"], EXCERPTS),
        report,
        PublisherMetrics(CollectorRegistry()),
        logging.getLogger("test"),
    )
    before = dict(repository.saved["c1"][1])

    republisher.changed("c1")
    republisher.changed("c-unpublished")  # nothing to republish: the close renders its files
    await republisher.run_once()
    assert repository.saves == 2
    assert republisher.pending == frozenset()
    first = dict(repository.saved["c1"][1])
    assert [line["commitment_id"] for line in rows(first[ENGAGEMENTS_CSV])] == ["open-d1", "open-d7"]
    for name in (OPEN_CSV, RESULTS_JSON, RESPONDENTS_CSV, ANSWERS_CSV):
        assert first[name] == before[name], name

    republisher.changed("c1")  # the same state again (a redelivery, a second replica): nothing is written
    await republisher.run_once()
    assert repository.saves == 2

    current["commitments"] = [
        COMMITMENTS[0],
        commitment("open-d1", CommitmentKind.OPEN, "d1", tuple(CommitmentStatus)[:3], done_url="https://x.fr/d1"),
    ]
    republisher.changed("c1")
    await republisher.run_once()
    assert repository.saves == 3
    lines = {line["commitment_id"]: line for line in rows(repository.saved["c1"][1][ENGAGEMENTS_CSV])}
    assert lines["open-d1"]["status"] == "done"
    assert repository.saved["c1"][1] == rendered(follow_up_of(results, current["commitments"], EXCERPTS))


async def test_a_failed_republication_stays_pending() -> None:
    class Failing(FakeResultsRepository):
        async def get(self, consultation_id: str) -> Publication | None:
            raise ConnectionError("MongoDB is away")

    report = published(seed=3)[3]
    republisher = Republisher(
        Failing(), lambda r: FollowUp(), report, PublisherMetrics(CollectorRegistry()), logging.getLogger("test")
    )
    republisher.changed("c1")
    await republisher.run_once()
    assert republisher.pending == {"c1"}


@pytest.mark.parametrize("status", list(CommitmentStatus))
def test_every_status_renders(status: CommitmentStatus) -> None:
    statuses = (status,) if status is CommitmentStatus.PLANNED else (CommitmentStatus.PLANNED, status)
    extra = {"reason": "Budget"} if status is CommitmentStatus.DROPPED else {}
    c = commitment("one", CommitmentKind.OPEN, "d1", statuses, **extra)
    results = published(seed=3)[0]
    files = rendered(follow_up_of(results, [c], []))
    assert rows(files[ENGAGEMENTS_CSV])[0]["status"] == status.value


def test_a_changed_input_marks_its_consultation_and_the_follow_up_reads_the_inputs_as_they_stand() -> None:
    changed: list[str] = []
    inputs = FollowUpInputs("unused:9092", ["c1", "c10"], changed.append, logging.getLogger("test.inputs"))
    inputs.commitments.put("c1:open-d7", COMMITMENTS[0])
    inputs.excerpts.put("c10:x3", excerpt("x3", "Ailleurs.", cid="c10"))
    inputs.excerpts.put("c2:x4", excerpt("x4", "Unknown consultation.", cid="c2"))
    assert changed == ["c1", "c10"]
    results, *_ = published(seed=3)
    assert inputs.follow_up(results) == follow_up_of(results, [COMMITMENTS[0]], [])

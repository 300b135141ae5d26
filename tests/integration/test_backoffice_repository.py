"""The workspace's MongoDB repository against the real MongoDB-compatible server: each respondent's
latest texts only, idempotent under redelivery, searchable with accents ignored."""

import uuid
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from pymongo import AsyncMongoClient

from deploy.local.infra import Infra
from services.backoffice.domain import TextKind
from services.backoffice.repository import MongoContributionRepository, MongoStaffRepository, TextFilter
from shared.contracts import Profile
from tests.backoffice_builders import T0, written

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def client(infra: Infra) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongo_uri, tz_aware=True)
    yield mongo
    await mongo.close()


@pytest.fixture
async def repository(client: AsyncMongoClient[dict[str, object]]) -> MongoContributionRepository:
    repo = MongoContributionRepository(client, f"test_{uuid.uuid4().hex[:8]}")
    await repo.ensure_indexes()
    return repo


async def comments(repository: MongoContributionRepository, words: str = "") -> list[str]:
    found, total = await repository.texts(TextFilter("c1", TextKind.IMPROVEMENT, words=words), 0, 100)
    assert total == len(found)
    return sorted(text["comment"] for text in found)


async def test_an_amendment_replaces_the_texts_and_a_redelivery_changes_nothing(
    repository: MongoContributionRepository,
) -> None:
    first = written("r1", "a", 1, comments={"d1": "Premier avis"}, platform=(2, "Lent"))
    other = written("r2", "b", 2, comments={"d1": "Données géolocalisées"}, profile=Profile.JOURNALIST)
    assert await repository.store([first, other], PARIS) == 2
    amended = written("r3", "a", 3, comments={"d2": "Avis corrigé"}, platform=(5, None))
    assert await repository.store([amended], PARIS) == 1
    assert await repository.store([first, other, amended], PARIS) == 0  # the whole stream again
    assert await comments(repository) == ["Avis corrigé", "Données géolocalisées"]
    assert await repository.satisfaction("c1") == {1: 0, 2: 0, 3: 0, 4: 0, 5: 1}
    by_profile, by_day = await repository.participation("c1")
    assert by_profile == {"researcher": 1, "journalist": 1}
    assert by_day == {T0.date().isoformat(): 2}


async def test_an_older_submission_arriving_late_does_not_replace_a_newer_one(
    repository: MongoContributionRepository,
) -> None:
    await repository.store([written("r2", "a", 5, comments={"d1": "Nouveau"})], PARIS)
    assert await repository.store([written("r1", "a", 1, comments={"d1": "Ancien"})], PARIS) == 0
    assert await comments(repository) == ["Nouveau"]


async def test_search_ignores_accents_and_filters_combine(repository: MongoContributionRepository) -> None:
    await repository.store(
        [
            written("r1", "a", 1, comments={"d1": "Des données À JOUR"}),
            written("r2", "b", 2, comments={"d2": "Des donnees anciennes"}, profile=Profile.STUDENT),
            written("r3", "c", 3, comments={"d1": "Rien à voir"}),
        ],
        PARIS,
    )
    assert await comments(repository, "donnees") == ["Des donnees anciennes", "Des données À JOUR"]
    assert await comments(repository, "a jour") == ["Des données À JOUR"]
    students = TextFilter("c1", TextKind.IMPROVEMENT, words="donnees", profile="student")
    assert [t["comment"] for t in (await repository.texts(students, 0, 10))[0]] == ["Des donnees anciennes"]
    on_d1 = TextFilter("c1", TextKind.IMPROVEMENT, dataset_id="d1", improvement="api_access")
    assert (await repository.texts(on_d1, 0, 10))[1] == 2
    assert [t["comment"] async for t in repository.all_texts(TextFilter("c1", TextKind.IMPROVEMENT, words="voir"))] == [
        "Rien à voir"
    ]
    assert await repository.improved_datasets("c1") == [("d1", "Titre d1"), ("d2", "Titre d2")]


async def test_suggestions_are_grouped_most_respondents_first(repository: MongoContributionRepository) -> None:
    await repository.store(
        [
            written("r1", "a", 1, suggestions=[("Fanfares", "Liste", None)]),
            written("r2", "b", 2, suggestions=[("Fanfares", None, "DRAC"), ("Orgues", None, None)]),
        ],
        PARIS,
    )
    groups, total = await repository.suggestion_groups(TextFilter("c1", TextKind.SUGGESTION), 0, 10)
    assert total == 2
    assert [(g["_id"], g["respondents"], len(g["texts"])) for g in groups] == [
        ("title:fanfares", 2, 2),
        ("title:orgues", 1, 1),
    ]


async def test_staff_audit_and_failures_persist(client: AsyncMongoClient[dict[str, object]]) -> None:
    staff = MongoStaffRepository(client, f"test_{uuid.uuid4().hex[:8]}")
    await staff.ensure_indexes()
    assert await staff.add_account("agent", "hash", T0)
    assert not await staff.add_account("agent", "other", T0)
    await staff.record_failure(["account:agent", "client:x"], T0)
    assert await staff.failures(["account:agent", "client:y"]) == {"account:agent": [T0], "client:y": []}
    await staff.audit(T0, "agent", "consultation.create", "c1", "detail")
    entries, total = await staff.audit_entries(0, 10)
    assert total == 1
    assert (entries[0]["who"], entries[0]["action"], entries[0]["target"]) == ("agent", "consultation.create", "c1")

"""The closing flow with hand-written fakes: what is emitted and stored, and what is not."""

import json

import pytest

from services.publisher.archive import same_totals
from services.publisher.closing import ResultsDisagree
from services.publisher.files import METHOD_JSON, RESULTS_JSON
from shared.contracts import (
    ResultsPublished,
)
from tests.publisher_builders import FakeEmitter, FakeResultsRepository, FakeScoring, closer


async def test_a_closed_consultation_is_published_once_with_its_files() -> None:
    scoring, emitter, repository = FakeScoring(1), FakeEmitter(), FakeResultsRepository()
    flow = closer(scoring, emitter, repository)
    await flow.tick()
    await flow.tick()
    assert len(emitter.emitted) == 1
    results, files = repository.saved["c1"]
    frozen = emitter.emitted[0]
    assert results == frozen  # stored for staff, in full detail
    assert frozen.respondents == len(scoring.store.ballots)
    # What is published is ranked from the public archive: the same totals, no small breakdown cell.
    public = ResultsPublished.model_validate_json(files[RESULTS_JSON])
    assert (public.event_id, public.respondents) == (frozen.event_id, frozen.respondents)
    assert same_totals(frozen, public) == []
    for row in [*public.open, *public.improve, *public.suggestions]:
        cells = [t.respondents for t in row.by_profile.values()] + [*row.by_priority.values()]
        assert all(n >= 5 for n in [*cells, *row.by_improvement.values()]), row
    assert any(
        0 < t.respondents < 5 for row in frozen.open for t in row.by_profile.values()
    )  # the frozen results had some
    assert {"a-ouvrir.csv", "reponses.csv", "datapackage.json", "methode.json", "rapport.html"} <= set(files)
    assert scoring.ballot_reads == 1


async def test_files_stored_before_the_publication_rules_are_rendered_again_without_a_second_emission() -> None:
    scoring, emitter, repository = FakeScoring(1), FakeEmitter(), FakeResultsRepository()
    await closer(scoring, emitter, repository).tick()
    results, files = repository.saved["c1"]
    method = json.loads(files[METHOD_JSON])
    del method["publication"]
    repository.saved["c1"] = (emitter.emitted[0], dict(files, **{METHOD_JSON: json.dumps(method).encode()}))
    await closer(scoring, emitter, repository).tick()  # a new process: the old files are found
    assert len(emitter.emitted) == 1
    assert repository.saved["c1"] == (results, files)
    assert scoring.ballot_reads == 2


async def test_nothing_is_published_when_the_archive_and_the_tallies_disagree_and_retries_back_off() -> None:
    scoring, emitter, repository = FakeScoring(1, drop_one_ballot=True), FakeEmitter(), FakeResultsRepository()
    flow = closer(scoring, emitter, repository)
    with pytest.raises(ResultsDisagree):
        await flow.tick()
    await flow.tick()  # too soon: the next attempt waits (2 s, then 4 s… up to a minute)
    assert scoring.ballot_reads == 1
    assert emitter.emitted == []
    assert repository.saved == {}

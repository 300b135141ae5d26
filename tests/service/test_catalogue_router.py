"""The catalogue's subscriber through FastStream's `TestKafkaBroker`: each response forwarded enriched
under its key, what cannot be read dead-lettered with its reason, a refreshed catalogue used from the
next batch."""

from collections.abc import AsyncIterator

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.catalogue.domain import Catalogue
from services.catalogue.handlers import SERVICE, CatalogueHolder, CatalogueMetrics, build_router
from services.catalogue.settings import CatalogueSettings
from shared.contracts import (
    DatasetRecord,
    DatasetStatus,
    ImprovementKind,
    MessageDeadLettered,
    Priority,
    ResponseEnriched,
)
from shared.kafka import make_broker
from shared.topics import DEAD_LETTERS, RESPONSES_ENRICHED, RESPONSES_SUBMITTED
from tests.service.builders import deliver, submitted
from tests.service.fakes import RecordingPublisher

ORGANS = DatasetRecord(
    dataset_id="d-organs",
    title="Inventaire des orgues protégés",
    organisation="Ministère de la Culture",
    status=DatasetStatus.NOT_OPEN,
    source="census",
)
MUSEUMS = DatasetRecord(
    dataset_id="d-museums", title="Liste des musées de France", status=DatasetStatus.OPEN, source="datagouv"
)


class Catalogued:
    """The catalogue's router on a test broker, with its ports and metrics."""

    def __init__(
        self, broker: KafkaBroker, holder: CatalogueHolder, publisher: RecordingPublisher, registry: CollectorRegistry
    ) -> None:
        self.broker, self.holder, self.publisher, self.registry = broker, holder, publisher, registry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def catalogue() -> AsyncIterator[Catalogued]:
    settings = CatalogueSettings()
    registry = CollectorRegistry()
    holder, publisher = CatalogueHolder(Catalogue([ORGANS, MUSEUMS])), RecordingPublisher()
    broker = make_broker(settings, registry, SERVICE)
    broker.include_router(build_router(settings, holder, publisher, CatalogueMetrics(registry)))
    async with TestKafkaBroker(broker) as test_broker:
        yield Catalogued(test_broker, holder, publisher, registry)


async def test_each_response_is_forwarded_enriched_under_its_own_key(catalogue: Catalogued) -> None:
    responses = [
        submitted("r1", "p1", 1, opens={"d-organs": Priority.ESSENTIAL}, suggestions=["Liste des musées de France"]),
        submitted(
            "r2", "p2", 2, improves={"d-museums": [ImprovementKind.EXPORT_FORMAT]}, suggestions=["Fresques romanes"]
        ),
    ]
    await deliver(catalogue.broker, RESPONSES_SUBMITTED, *responses)
    forwarded = catalogue.publisher.published[RESPONSES_ENRICHED]
    assert [key for key, _ in forwarded] == [f"c1:{r.respondent_key}" for r in responses]
    first, second = (e for _, e in forwarded)
    assert isinstance(first, ResponseEnriched)
    assert isinstance(second, ResponseEnriched)
    assert (first.response, second.response) == (responses[0], responses[1])
    assert first.datasets["d-organs"].organisation == "Ministère de la Culture"
    assert first.suggestions[0].matched_dataset_id == "d-museums"
    assert second.datasets["d-museums"].status is DatasetStatus.OPEN
    assert second.suggestions[0].matched_dataset_id is None
    assert catalogue.publisher.events(DEAD_LETTERS, MessageDeadLettered) == []
    assert catalogue.sample("catalogue_responses_enriched_total") == 2
    assert catalogue.sample("catalogue_suggestions_total", outcome="matched") == 1


async def test_an_unknown_dataset_is_left_out_and_counted(catalogue: Catalogued) -> None:
    await deliver(catalogue.broker, RESPONSES_SUBMITTED, submitted("r1", "p1", 1, opens={"d-gone": Priority.USEFUL}))
    [forwarded] = catalogue.publisher.events(RESPONSES_ENRICHED, ResponseEnriched)
    assert isinstance(forwarded, ResponseEnriched)
    assert forwarded.datasets == {}
    assert catalogue.sample("catalogue_dataset_references_total", outcome="unknown") == 1


async def test_what_is_not_a_response_is_dead_lettered_and_the_rest_of_the_batch_goes_on(catalogue: Catalogued) -> None:
    good = submitted("r1", "p1", 1, opens={"d-organs": Priority.USEFUL})
    await deliver(catalogue.broker, RESPONSES_SUBMITTED, b"{not json", good, b'{"response_id": "r9"}')
    assert [e.response for e in catalogue.publisher.events(RESPONSES_ENRICHED, ResponseEnriched)] == [good]
    dead = catalogue.publisher.events(DEAD_LETTERS, MessageDeadLettered)
    assert [type(d) for d in dead] == [MessageDeadLettered, MessageDeadLettered]
    assert [d.payload for d in dead] == ["{not json", '{"response_id": "r9"}']
    assert all(d.service == "catalogue" and d.source_topic == RESPONSES_SUBMITTED for d in dead)
    assert all("not a ResponseSubmitted" in d.reason for d in dead)
    assert catalogue.sample("catalogue_dead_letters_total") == 2


async def test_a_refreshed_catalogue_enriches_the_next_batch(catalogue: Catalogued) -> None:
    renamed = ORGANS.model_copy(update={"title": "Orgues protégés au titre des monuments historiques"})
    await deliver(catalogue.broker, RESPONSES_SUBMITTED, submitted("r1", "p1", 1, opens={"d-organs": Priority.USEFUL}))
    catalogue.holder.current = Catalogue([renamed])
    await deliver(catalogue.broker, RESPONSES_SUBMITTED, submitted("r2", "p2", 2, opens={"d-organs": Priority.USEFUL}))
    before, after = catalogue.publisher.events(RESPONSES_ENRICHED, ResponseEnriched)
    assert before.datasets["d-organs"].title == ORGANS.title
    assert after.datasets["d-organs"].title == renamed.title

"""The catalogue's refresh: the sources read again, what changed published on the catalogue topic (new,
updated, retired) and applied to the view at once, the catalogue in force replaced, bad rows counted."""

import logging

from prometheus_client import CollectorRegistry

from services.catalogue.domain import Catalogue, LoadReport, RowError
from services.catalogue.handlers import CatalogueHolder, CatalogueMetrics, Refresher
from shared.catalogue_view import CatalogueView
from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus
from shared.topics import CATALOGUE_DATASETS
from tests.service.fakes import RecordingPublisher


def record(dataset_id: str, title: str = "", status: DatasetStatus = DatasetStatus.NOT_OPEN) -> DatasetRecord:
    return DatasetRecord(dataset_id=dataset_id, title=title or f"Title {dataset_id}", status=status, source="test")


class Sources:
    """The sources as the refresh reads them: whatever the test puts in `report`."""

    def __init__(self, *datasets: DatasetRecord) -> None:
        self.report = LoadReport(list(datasets))

    async def __call__(self) -> LoadReport:
        return LoadReport(list(self.report.datasets), list(self.report.errors))


class Refreshing:
    def __init__(self, sources: Sources) -> None:
        self.holder = CatalogueHolder(Catalogue([]))
        self.view = CatalogueView("unused:9092", logging.getLogger("test"))
        self.publisher = RecordingPublisher()
        self.registry = CollectorRegistry()
        logger = logging.getLogger("test.catalogue")
        metrics = CatalogueMetrics(self.registry)
        self.refresher = Refresher(sources, self.holder, self.view, self.publisher, metrics, logger, 3600)

    def published(self) -> list[tuple[str, bool]]:
        events = self.publisher.events(CATALOGUE_DATASETS, DatasetCatalogued)
        return [(e.dataset_id, e.retired) for e in events]


async def test_a_first_refresh_publishes_every_dataset_and_puts_the_catalogue_in_force() -> None:
    sources = Sources(record("d-a"), record("d-b", status=DatasetStatus.OPEN))
    refreshing = Refreshing(sources)
    summary = await refreshing.refresher.refresh()
    assert summary == {"datasets": 2, "published": 2, "retired": 0, "rejected_rows": []}
    assert refreshing.published() == [("d-a", False), ("d-b", False)]
    assert set(refreshing.holder.current.datasets) == {"d-a", "d-b"}
    assert refreshing.view.status("d-b") is DatasetStatus.OPEN


async def test_a_later_refresh_publishes_only_what_changed_and_retires_what_left() -> None:
    sources = Sources(record("d-a"), record("d-b"), record("d-c"))
    refreshing = Refreshing(sources)
    await refreshing.refresher.refresh()
    sources.report = LoadReport([record("d-a"), record("d-b", title="Renamed")], [RowError("census", 7, "no id")])
    summary = await refreshing.refresher.refresh()
    assert (summary["published"], summary["retired"]) == (1, 1)
    assert summary["rejected_rows"] == [{"source": "census", "line": 7, "reason": "no id"}]
    assert refreshing.published()[3:] == [("d-b", False), ("d-c", True)]
    assert refreshing.view.dataset("d-c") is None
    assert set(refreshing.holder.current.datasets) == {"d-a", "d-b"}
    assert refreshing.registry.get_sample_value("catalogue_rejected_rows") == 1
    assert await refreshing.refresher.refresh() == summary | {"published": 0, "retired": 0}

"""The topics the workspace follows: every view is started, in an order that lets the catalogue fulfil
the commitments already read, and the catalogue's changes reach the workspace."""

import dataclasses
import logging

from services.backoffice.views import Views
from shared.catalogue_view import CatalogueView
from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus, utc_now

LOGGER = logging.getLogger("test.backoffice.views")


def catalogued(dataset_id: str) -> DatasetCatalogued:
    record = DatasetRecord(dataset_id=dataset_id, title=dataset_id, status=DatasetStatus.OPEN, source="test")
    return DatasetCatalogued(event_id=dataset_id, occurred_at=utc_now(), dataset_id=dataset_id, dataset=record)


def test_every_view_starts_and_the_commitments_are_read_before_the_catalogue() -> None:
    views = Views.follow("unused:9092", LOGGER, lambda key, entry: None)
    order = list(views.in_start_order())
    started = {id(view) for view in views.in_start_order().values()}
    assert started == {id(getattr(views, field.name)) for field in dataclasses.fields(views)}
    assert order.index("commitments") < order.index("catalogue")


def test_the_catalogue_is_the_shared_view_and_its_changes_reach_the_workspace() -> None:
    heard: list[tuple[str, DatasetCatalogued | None]] = []
    views = Views.follow("unused:9092", LOGGER, lambda key, entry: heard.append((key, entry)))
    entry = catalogued("d1")
    views.catalogue.put("d1", entry)
    assert isinstance(views.catalogue, CatalogueView)
    assert heard == [("d1", entry)]

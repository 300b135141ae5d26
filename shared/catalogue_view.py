"""The catalogue as every service sees it: `catalogue.dataset.v1` followed, retired datasets left out."""

import logging
from collections.abc import Callable

from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus
from shared.kafka import StateView
from shared.topics import CATALOGUE_DATASETS

__all__ = ["CatalogueView", "in_force"]


def in_force(entry: DatasetCatalogued | None) -> DatasetCatalogued | None:
    """The entry if its dataset is in the catalogue, None if there is no entry or the dataset is retired."""
    return None if entry is None or entry.retired else entry


class CatalogueView(StateView[DatasetCatalogued]):
    """The compacted catalogue topic as a view. A retired dataset stays on the topic (marked so) but is
    no longer in the catalogue: `dataset` and `datasets` answer only for the datasets in force."""

    def __init__(
        self,
        bootstrap: str,
        logger: logging.Logger,
        on_change: Callable[[str, DatasetCatalogued | None], None] | None = None,
    ) -> None:
        super().__init__(bootstrap, CATALOGUE_DATASETS, DatasetCatalogued, logger, on_change)

    def entry(self, dataset_id: str) -> DatasetCatalogued | None:
        """The entry of the dataset in force under this id (with when the catalogue recorded it), or None
        if it is unknown or retired."""
        return in_force(self.get(dataset_id))

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        """The dataset in force under this id, or None if it is unknown or retired."""
        entry = self.entry(dataset_id)
        return None if entry is None else entry.dataset

    def status(self, dataset_id: str) -> DatasetStatus | None:
        """Whether the dataset in force under this id is open, or None if it is unknown or retired."""
        dataset = self.dataset(dataset_id)
        return None if dataset is None else dataset.status

    def datasets(self) -> dict[str, DatasetRecord]:
        """Every dataset in force, by id."""
        return {key: entry.dataset for key, entry in self.items.items() if in_force(entry)}

"""The catalogue as every service sees it: `catalogue.dataset.v1` followed, retired datasets left out."""

import logging
from collections.abc import Callable

from shared.contracts import DatasetCatalogued, DatasetRecord, DatasetStatus
from shared.kafka import StateView
from shared.topics import CATALOGUE_DATASETS

__all__ = ["CatalogueView"]


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

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        """The dataset in force under this id, or None if it is unknown or retired."""
        entry = self.get(dataset_id)
        return None if entry is None or entry.retired else entry.dataset

    def status(self, dataset_id: str) -> DatasetStatus | None:
        """Whether the dataset in force under this id is open, or None if it is unknown or retired."""
        dataset = self.dataset(dataset_id)
        return None if dataset is None else dataset.status

    def datasets(self) -> dict[str, DatasetRecord]:
        """Every dataset in force, by id."""
        return {key: entry.dataset for key, entry in self.items.items() if not entry.retired}

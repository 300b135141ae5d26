"""The compacted topics the workspace follows, each held in memory as a state view."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from shared.catalogue_view import CatalogueView
from shared.contracts import (
    CommitmentRecorded,
    ConsultationDefined,
    DatasetCatalogued,
    ExcerptApproved,
    ExclusionDecided,
)
from shared.kafka import StateView
from shared.topics import COMMITMENTS, CONSULTATIONS, EXCERPTS, EXCLUSIONS

__all__ = ["Views"]


@dataclass(frozen=True)
class Views:
    consultations: StateView[ConsultationDefined]
    commitments: StateView[CommitmentRecorded]
    excerpts: StateView[ExcerptApproved]
    catalogue: CatalogueView
    exclusions: StateView[ExclusionDecided]

    @classmethod
    def follow(
        cls, bootstrap: str, logger: logging.Logger, on_dataset: Callable[[str, DatasetCatalogued | None], None]
    ) -> Self:
        """The views, not started yet; `on_dataset` hears of each change to the catalogue."""
        return cls(
            StateView(bootstrap, CONSULTATIONS, ConsultationDefined, logger),
            StateView(bootstrap, COMMITMENTS, CommitmentRecorded, logger),
            StateView(bootstrap, EXCERPTS, ExcerptApproved, logger),
            CatalogueView(bootstrap, logger, on_change=on_dataset),
            StateView(bootstrap, EXCLUSIONS, ExclusionDecided, logger),
        )

    def in_start_order(self) -> dict[str, StateView[Any]]:
        """Each view by name, in the order they start and are waited for."""
        # Commitments before the catalogue: a dataset seen opening fulfils the commitments already read.
        return {
            "consultations": self.consultations,
            "commitments": self.commitments,
            "excerpts": self.excerpts,
            "catalogue": self.catalogue,
            "exclusions": self.exclusions,
        }

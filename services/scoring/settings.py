from typing import Self

from pydantic import Field, model_validator

from shared.contracts import Priority
from shared.settings import ServiceSettings
from shared.topics import SCORING_GROUP


class ScoringSettings(ServiceSettings):
    http_port: int = 8002
    mongo_database: str = "cod_scoring"
    consumer_group: str = SCORING_GROUP
    batch_max_records: int = Field(default=500, gt=0)
    weights: dict[Priority, int] = Field(
        default={Priority.ESSENTIAL: 3, Priority.IMPORTANT: 2, Priority.USEFUL: 1},
        description='Weight of each priority in "to open", e.g. COD_WEIGHTS=\'{"essential": 3, '
        '"important": 2, "useful": 1}\'.',
    )

    @model_validator(mode="after")
    def _every_priority_weighted(self) -> Self:
        if set(self.weights) != set(Priority) or any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must give a non-negative integer to every priority")
        return self

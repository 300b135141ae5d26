from typing import Self

from pydantic import Field, model_validator

from shared.contracts import Priority
from shared.settings import ServiceSettings
from shared.topics import SCORING_GROUP


class ScoringSettings(ServiceSettings):
    http_port: int = 8002
    mongo_database: str = "cod_scoring"
    consumer_group: str = SCORING_GROUP
    # Small enough that a batch commits well within the group's rebalance timeout.
    batch_max_records: int = Field(default=200, gt=0)
    stream_poll_s: float = Field(default=0.25, gt=0, description="How often a live feed checks for changes.")
    live_resamples: int = Field(
        default=200,
        ge=1,
        description="Bootstrap resamples of the live rank intervals (COD_LIVE_RESAMPLES); the published ones "
        "use the publisher's COD_BOOTSTRAP_RESAMPLES.",
    )
    live_intervals_every_s: float = Field(
        default=2.0,
        ge=0,
        description="Least seconds between two background computations of a consultation's live rank intervals; "
        "meanwhile the rankings are served at once with the latest intervals computed.",
    )
    tally_wait_s: float = Field(
        default=60.0,
        gt=0,
        description="Longest a tally request of the publisher waits for scoring's group to commit up to its "
        "watermark (it also stops at the request's expiry); past it, no reply: the publisher asks again.",
    )
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

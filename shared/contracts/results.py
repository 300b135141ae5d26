from pydantic import AwareDatetime, Field

from shared.contracts.base import Event
from shared.contracts.exclusions import ExclusionInForce
from shared.contracts.rankings import RankingMethod, RankingRow


class ResultsPublished(Event):
    """The frozen results of a closed consultation, emitted once (`event_id` derives from it)."""

    consultation_id: str = Field(description="The closed consultation.")
    title: str = Field(description="Its title.")
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    frozen_at: AwareDatetime = Field(description="When every accepted response had been scored.")
    respondents: int = Field(description="Respondents counted (in the rankings: without the excluded ones).")
    excluded_respondents: int = Field(default=0, description="Respondents set aside by staff's exclusions.")
    exclusions: list[ExclusionInForce] = Field(
        default_factory=list, description="The clusters set aside at the close, by cluster id."
    )
    method: RankingMethod
    open: list[RankingRow] = Field(description="Datasets to open, ranked.")
    improve: list[RankingRow] = Field(description="Open datasets to improve, ranked.")
    suggestions: list[RankingRow] = Field(description="Datasets not in the catalogue, grouped and ranked.")

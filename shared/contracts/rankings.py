"""Rankings as scoring serves them and as the results freeze them."""

from enum import StrEnum

from pydantic import AwareDatetime, Field

from shared.contracts.base import Contract
from shared.contracts.catalogue import DatasetStatus
from shared.contracts.questionnaire import ImprovementKind, Priority, Profile


class RankingKind(StrEnum):
    OPEN = "open"
    IMPROVE = "improve"
    SUGGESTIONS = "suggestions"


class RankingView(StrEnum):
    RAW = "raw"  # every counted respondent
    FILTERED = "filtered"  # without the respondents of the clusters staff excluded


class Tally(Contract):
    """Score and number of respondents within one respondent profile."""

    score: int = Field(description="Score contributed by respondents of this profile.")
    respondents: int = Field(description="Respondents of this profile counted in the row.")


class RankingRow(Contract):
    """One ranked dataset (or group of suggestions)."""

    rank: int = Field(description="1-based position in the ranking.")
    key: str = Field(description="What is ranked: the dataset id, or a suggestion group key.")
    dataset_id: str | None = Field(description="Catalogue dataset, when the row is one.")
    title: str | None = Field(description="Title of the dataset or group.")
    status: DatasetStatus | None = Field(
        default=None, description="The dataset's status in the catalogue now (a dataset asked for may have opened)."
    )
    score: int = Field(description="Score under the method in force.")
    respondents: int = Field(description="Distinct respondents counted in the row.")
    by_profile: dict[Profile, Tally] = Field(description="Breakdown by respondent profile.")
    by_priority: dict[Priority, int] = Field(
        default_factory=dict, description="Respondents per priority given (open only)."
    )
    by_improvement: dict[ImprovementKind, int] = Field(
        default_factory=dict, description="Respondents per kind of improvement (improve only)."
    )
    rank_interval: tuple[int, int] | None = Field(
        default=None,
        description="[low, high]: the rank's bootstrap interval at the method's level (low ≤ rank ≤ high); "
        "null where not computed (a ranking of one profile, results published before intervals existed).",
    )
    too_close_to_call: bool | None = Field(
        default=None, description="Whether the row's interval overlaps a neighbour's: its tie group has other rows."
    )
    tie_group: int | None = Field(
        default=None, description="The rank of the first row of its group of consecutive overlapping intervals."
    )
    ranks_by_weighting: dict[str, int] = Field(
        default_factory=dict,
        description="To open: the row's rank under each alternative weighting the method names (e.g. equal_weights).",
    )


class RankUncertainty(Contract):
    """How the rank intervals are computed, so anyone can draw the same resamples."""

    resamples: int = Field(description="Bootstrap resamples.")
    level: int = Field(description="Level of the intervals, in percent.")
    seed: int = Field(description="Seed of the generator (from SHA-256 of the consultation id).")
    statement: str = Field(description="Plain statement of the bootstrap and of 'too close to call'.")
    weightings: dict[str, dict[Priority, int]] = Field(
        default_factory=dict, description="Alternative weightings of 'to open' under which each row is ranked too."
    )


class RankingMethod(Contract):
    """The published formula, so anyone can recompute the rankings."""

    weights: dict[Priority, int] = Field(description="Score of each priority in 'to open'.")
    formula: str = Field(description="Plain statement of the formula.")
    tie_break: str = Field(description="Order among equal scores.")
    uncertainty: RankUncertainty | None = Field(
        default=None, description="The bootstrap of the rank intervals; null when none were computed."
    )


class RankingPage(Contract):
    """A page of one ranking, as served by scoring."""

    consultation_id: str
    kind: RankingKind
    as_of: AwareDatetime | None = Field(description="Receipt time of the latest response counted.")
    respondents: int = Field(description="Respondents counted in the consultation.")
    total: int = Field(description="Rows in the whole ranking.")
    offset: int
    limit: int
    method: RankingMethod
    items: list[RankingRow]
    view: RankingView = Field(
        default=RankingView.RAW, description="raw counts every respondent; filtered leaves out the excluded."
    )
    excluded_respondents: int = Field(
        default=0, description="Respondents in clusters staff excluded (left out of the filtered view)."
    )


class CountedOpen(Contract):
    dataset_id: str = Field(description="Dataset the respondent asks to open.")
    priority: Priority = Field(description="The priority they gave it (the highest, if given twice).")


class CountedImprovement(Contract):
    dataset_id: str = Field(description="Open dataset the respondent asks to improve.")
    kinds: list[ImprovementKind] = Field(description="Kinds of improvement asked for, sorted.")


class CountedSuggestion(Contract):
    group_key: str = Field(description="Suggestion group: the matched dataset id, else the normalised title.")
    dataset_id: str | None = Field(description="Catalogue dataset the suggestion was matched to, if any.")
    title: str = Field(description="The title as the respondent typed it.")


class CountedBallot(Contract):
    """A respondent's counted (latest) submission, as scoring holds it: what the published archive is
    built from. It carries no respondent identifier; `response_id` only orders ballots."""

    response_id: str = Field(description="The counted submission (for ordering; not published).")
    received_at: AwareDatetime = Field(description="When ingest accepted the counted submission.")
    profile: Profile
    submissions: int = Field(description="Submissions the respondent made; the latest is counted.")
    open: list[CountedOpen]
    improve: list[CountedImprovement]
    suggestions: list[CountedSuggestion]
    exclusion: str | None = Field(
        default=None,
        description="The excluded cluster the respondent is set aside for (the first by id if several): "
        "out of the filtered rankings.",
    )

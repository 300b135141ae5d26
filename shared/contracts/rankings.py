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


class RankingMethod(Contract):
    """The published formula, so anyone can recompute the rankings."""

    weights: dict[Priority, int] = Field(description="Score of each priority in 'to open'.")
    formula: str = Field(description="Plain statement of the formula.")
    tie_break: str = Field(description="Order among equal scores.")


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

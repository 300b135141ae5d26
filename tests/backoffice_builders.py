"""Responses as the workspace receives them, for its unit and integration tests."""

from datetime import UTC, datetime, timedelta

from shared.contracts import (
    DatasetStatus,
    DatasetSummary,
    ImprovementKind,
    ImprovementRequest,
    PlatformFeedback,
    Profile,
    ResponseEnriched,
    ResponseSubmitted,
    Suggestion,
    SuggestionMatch,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def written(
    response_id: str,
    respondent: str,
    seconds: float,
    comments: dict[str, str | None] | None = None,
    suggestions: list[tuple[str, str | None, str | None]] | None = None,
    platform: tuple[int | None, str | None] | None = None,
    profile: Profile = Profile.RESEARCHER,
    consultation: str = "c1",
) -> ResponseEnriched:
    """A response whose improvements carry `comments` (dataset → comment), with suggestions
    (title, description, holder) and platform feedback (satisfaction, comment)."""
    received = T0 + timedelta(seconds=seconds)
    response = ResponseSubmitted(
        event_id=response_id,
        occurred_at=received,
        consultation_id=consultation,
        response_id=response_id,
        respondent_key=respondent,
        profile=profile,
        received_at=received,
        improvement_requests=[
            ImprovementRequest(dataset_id=d, kinds=[ImprovementKind.API_ACCESS], comment=c)
            for d, c in (comments or {}).items()
        ],
        suggestions=[Suggestion(title=t, description=d, holder=h) for t, d, h in suggestions or []],
        platform=PlatformFeedback(satisfaction=platform[0], comment=platform[1]) if platform else None,
    )
    datasets = {d: DatasetSummary(dataset_id=d, title=f"Titre {d}", status=DatasetStatus.OPEN) for d in comments or {}}
    matches = [SuggestionMatch(group_key=f"title:{t.lower()}", title=t) for t, _, _ in suggestions or []]
    return ResponseEnriched(
        event_id=response_id, occurred_at=received, response=response, datasets=datasets, suggestions=matches
    )

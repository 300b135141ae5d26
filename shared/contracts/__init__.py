"""Message models: the contract between services. See shared.topics for where each travels."""

from shared.contracts.base import Contract, Event, utc_now
from shared.contracts.catalogue import (
    DatasetCatalogued,
    DatasetRecord,
    DatasetStatus,
    DatasetSummary,
)
from shared.contracts.commitments import (
    CommitmentKind,
    CommitmentRecorded,
    CommitmentStatus,
    ExcerptApproved,
    ExcerptKind,
    FollowUpRequested,
    StatusChange,
)
from shared.contracts.consultations import ConsultationDefined
from shared.contracts.deadletters import MessageDeadLettered
from shared.contracts.questionnaire import (
    IMPROVEMENT_LABELS,
    PRIVACY_NOTICE,
    PROFILE_LABELS,
    Consent,
    ImprovementKind,
    ImprovementRequest,
    OpenRequest,
    PlatformFeedback,
    Priority,
    Profile,
    RespondentForm,
    ResponseForm,
    Suggestion,
)
from shared.contracts.rankings import (
    CountedBallot,
    CountedImprovement,
    CountedOpen,
    CountedSuggestion,
    RankingKind,
    RankingMethod,
    RankingPage,
    RankingRow,
    Tally,
)
from shared.contracts.responses import ResponseEnriched, ResponseSubmitted, SuggestionMatch
from shared.contracts.results import ResultsPublished

__all__ = [
    "IMPROVEMENT_LABELS",
    "PRIVACY_NOTICE",
    "PROFILE_LABELS",
    "CommitmentKind",
    "CommitmentRecorded",
    "CommitmentStatus",
    "Consent",
    "ConsultationDefined",
    "Contract",
    "CountedBallot",
    "CountedImprovement",
    "CountedOpen",
    "CountedSuggestion",
    "DatasetCatalogued",
    "DatasetRecord",
    "DatasetStatus",
    "DatasetSummary",
    "Event",
    "ExcerptApproved",
    "ExcerptKind",
    "FollowUpRequested",
    "ImprovementKind",
    "ImprovementRequest",
    "MessageDeadLettered",
    "OpenRequest",
    "PlatformFeedback",
    "Priority",
    "Profile",
    "RankingKind",
    "RankingMethod",
    "RankingPage",
    "RankingRow",
    "RespondentForm",
    "ResponseEnriched",
    "ResponseForm",
    "ResponseSubmitted",
    "ResultsPublished",
    "StatusChange",
    "Suggestion",
    "SuggestionMatch",
    "Tally",
    "utc_now",
]

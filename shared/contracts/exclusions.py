"""Ballot stuffing: the clusters detection flags, and staff's decision to set one aside (exclude) or
keep it counted (clear). Scoring serves the rankings raw and filtered; the publisher publishes the
filtered rankings with the clusters set aside, the rule and its settings."""

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from shared.contracts.base import Contract, Event

ClusterId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


class Signal(StrEnum):
    """What made detection flag a cluster."""

    NETWORK_BURST = "network_burst"  # many new respondents from one network fingerprint in a short time
    SAME_ANSWERS = "same_answers"  # the same (or nearly the same) answers from many respondents in a short time
    FAST_FILL = "fast_fill"  # web forms filled faster than a person reads them, from one network


class Decision(StrEnum):
    EXCLUDE = "exclude"  # set aside: out of the filtered rankings, still in the raw ones
    CLEAR = "clear"  # kept: counted in both


class DetectionSettings(Contract):
    """The detection rule's thresholds, as in force when a cluster was flagged (published in `methode.json`)."""

    burst_window_s: int = Field(description="Window of a network burst, seconds.")
    burst_min: int = Field(description="New respondents from one network within the window that make a burst.")
    same_window_s: int = Field(description="Window of a same-answers cluster, seconds.")
    same_min: int = Field(description="Respondents with nearly the same answers within the window that make one.")
    same_similarity: float = Field(description="Least Jaccard similarity of two answer sets called nearly the same.")
    same_lift: float = Field(
        default=3.0,
        description="How many times more common the answer set must be among the window's arrivals than among "
        "the rest of the consultation's: a popular answer is not a cluster.",
    )
    fast_fill_s: float = Field(description="Fill time, seconds, under which a form was not filled by a person.")
    fast_min: int = Field(description="Too-fast forms from one network that make a cluster.")


class ExclusionDecided(Event):
    """Staff excluded a flagged cluster from the filtered rankings, or cleared it, with a public reason;
    compacted by `<consultation_id>:<cluster_id>` (the latest decision holds). Decisions are taken while
    the consultation is open: the results frozen at the close carry those in force then."""

    consultation_id: str = Field(description="The consultation.")
    cluster_id: ClusterId = Field(description="The cluster, as detection names it (stable as it grows).")
    decision: Decision = Field(description="exclude or clear.")
    reason: Reason = Field(description="Why, in French; published with the results.")
    signals: list[Signal] = Field(description="The signals that flagged the cluster.")
    first_at: AwareDatetime = Field(description="Receipt of the cluster's first response.")
    last_at: AwareDatetime = Field(description="Receipt of its last response when decided.")
    datasets: list[str] = Field(description="Datasets the cluster pushes, most asked first.")
    respondent_keys: list[str] = Field(
        description="Pseudonymous keys of its respondents when decided: what scoring sets aside. Never published."
    )
    settings: DetectionSettings = Field(description="The rule's thresholds when the cluster was flagged.")
    decided_by: str = Field(description="The staff account (internal; not published).")

    @property
    def key(self) -> str:
        return f"{self.consultation_id}:{self.cluster_id}"


class ExclusionInForce(Contract):
    """A cluster set aside, as scoring applied it: what the results freeze and publish (no identifiers)."""

    cluster_id: ClusterId
    reason: Reason
    signals: list[Signal]
    first_at: AwareDatetime
    last_at: AwareDatetime
    datasets: list[str]
    respondents: int = Field(description="Respondents scoring set aside for it (counted ballots).")
    settings: DetectionSettings

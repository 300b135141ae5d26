"""A separate, deliberately simple implementation of the default ranking, for checking the system.

It knows nothing of ballots, deltas or Kafka: it takes the accepted responses, keeps each
respondent's latest one, and sums.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WEIGHTS = {"essential": 3, "important": 2, "useful": 1}


@dataclass
class Accepted:
    """A response the system answered 202 to: what was sent and what it said back."""

    body: dict[str, Any]
    response_id: str
    token: str
    received_at: str

    @property
    def received(self) -> datetime:
        # Compared as instants, never as strings: "…:01Z" (a receipt on a whole second, where the
        # fraction is omitted) sorts after "…:01.123000Z" as text.
        return datetime.fromisoformat(self.received_at)


@dataclass
class Row:
    score: int = 0
    respondents: int = 0
    by_profile: dict[str, dict[str, int]] = field(default_factory=dict)
    by_improvement: dict[str, int] = field(default_factory=dict)

    def count(self, profile: str, points: int) -> None:
        self.score += points
        self.respondents += 1
        tally = self.by_profile.setdefault(profile, {"score": 0, "respondents": 0})
        tally["score"] += points
        tally["respondents"] += 1


def latest_per_respondent(accepted: list[Accepted]) -> list[Accepted]:
    first_by_id: dict[str, Accepted] = {}
    for answer in accepted:
        first_by_id.setdefault(answer.response_id, answer)
    latest: dict[str, Accepted] = {}
    for answer in first_by_id.values():
        current = latest.get(answer.token)
        if current is None or (answer.received, answer.response_id) > (
            current.received,
            current.response_id,
        ):
            latest[answer.token] = answer
    return list(latest.values())


def expected_rankings(accepted: list[Accepted], suggestion_key: Any) -> dict[str, dict[str, Row]]:
    rows: dict[str, dict[str, Row]] = {
        "open": defaultdict(Row),
        "improve": defaultdict(Row),
        "suggestions": defaultdict(Row),
    }
    for answer in latest_per_respondent(accepted):
        profile = answer.body["respondent"]["profile"]
        for request in answer.body.get("open_requests", []):
            rows["open"][request["dataset_id"]].count(profile, WEIGHTS[request["priority"]])
        for request in answer.body.get("improvement_requests", []):
            row = rows["improve"][request["dataset_id"]]
            row.count(profile, 1)
            for kind in request["kinds"]:
                row.by_improvement[kind] = row.by_improvement.get(kind, 0) + 1
        for key in {suggestion_key(s["title"]) for s in answer.body.get("suggestions", [])}:
            rows["suggestions"][key].count(profile, 1)
    return rows


def ranked(rows: dict[str, Row]) -> list[tuple[str, int, int]]:
    return sorted(((k, r.score, r.respondents) for k, r in rows.items()), key=lambda x: (-x[1], -x[2], x[0]))

"""What ingest remembers of respondents: a Protocol and its MongoDB implementation.

Per respondent of a consultation, one document: the answers already given (by submission id, to
answer a retried POST exactly as the first time) and the latest submission's form (to pre-fill the
form when the respondent comes back with their token). Neither the token nor the e-mail is stored.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from shared.contracts import ResponseForm, ResponseSubmitted

Document = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StoredAnswer:
    received_at: datetime
    body_digest: str


class RespondentStore(Protocol):
    async def previous_answer(
        self, consultation_id: str, respondent_key: str, response_id: str
    ) -> StoredAnswer | None: ...

    async def record(self, event: ResponseSubmitted, form: ResponseForm, body_digest: str) -> None: ...

    async def latest_form(self, consultation_id: str, respondent_key: str) -> dict[str, Any] | None: ...


def _id(consultation_id: str, respondent_key: str) -> str:
    return f"{consultation_id}|{respondent_key}"


class MongoRespondentStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._respondents = client[database]["respondents"]

    async def ping(self) -> None:
        await self._respondents.database.command("ping")

    async def previous_answer(self, consultation_id: str, respondent_key: str, response_id: str) -> StoredAnswer | None:
        doc = await self._respondents.find_one(
            {"_id": _id(consultation_id, respondent_key)}, {f"answers.{response_id}": 1}
        )
        answer = (doc or {}).get("answers", {}).get(response_id)
        return StoredAnswer(answer["received_at"], answer["body_digest"]) if answer else None

    async def record(self, event: ResponseSubmitted, form: ResponseForm, body_digest: str) -> None:
        """Remember the answer; keep the form if it is the respondent's latest (one round trip)."""
        stored_form = form.model_dump(mode="json", exclude={"response_id": True, "respondent": {"token", "email"}})
        latest = {"received_at": event.received_at, "response_id": event.response_id, "form": stored_form}
        newer = {"$gt": [event.received_at, {"$ifNull": ["$latest.received_at", EPOCH]}]}
        await self._respondents.update_one(
            {"_id": _id(event.consultation_id, event.respondent_key)},
            [
                {
                    "$set": {
                        "consultation_id": event.consultation_id,
                        # Literal: respondents' free text must never be read as pipeline expressions.
                        "latest": {"$cond": [newer, {"$literal": latest}, "$latest"]},
                        f"answers.{event.response_id}": {
                            "$literal": {"received_at": event.received_at, "body_digest": body_digest}
                        },
                    }
                }
            ],
            upsert=True,
        )

    async def latest_form(self, consultation_id: str, respondent_key: str) -> dict[str, Any] | None:
        doc = await self._respondents.find_one({"_id": _id(consultation_id, respondent_key)}, {"latest.form": 1})
        form = (doc or {}).get("latest", {}).get("form")
        return dict(form) if form else None

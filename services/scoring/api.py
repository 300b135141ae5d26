"""Scoring's HTTP API: the live rankings (a page, and a feed of its changes), for staff unless public;
each respondent's counted ballot and the exclusions in force, for administrators."""

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from services.scoring.rankings import LiveRankings, UnknownConsultation
from shared.contracts import Contract, CountedBallot, ExclusionInForce, Profile, RankingKind, RankingPage, RankingView
from shared.http import ProblemError, problem_responses, require_admin

__all__ = ["ConsultationExclusions", "ScoringApi"]

MAX_PAGE = 10_000
VIEW_DOC = (
    "raw: every counted respondent; filtered: without the respondents of the clusters staff excluded. "
    "By default filtered once a cluster of the consultation is excluded, else raw."
)
INTERVALS_DOC = (
    "false: without the rank intervals (no bootstrap), as scoring reads the tallies it sends the publisher "
    "at the close."
)
BALLOTS_PER_CHUNK = 1000
KEEP_ALIVE_S = 15


class ConsultationExclusions(Contract):
    """The clusters of a consultation set aside now, as scoring applies them."""

    consultation_id: str
    exclusions: list[ExclusionInForce] = Field(description="Each cluster whose latest decision is exclude, by id.")


def _not_found(consultation_id: str) -> HTTPException:
    return HTTPException(404, f"No consultation {consultation_id!r}.")


async def _ndjson(ballots: AsyncIterator[CountedBallot]) -> AsyncIterator[bytes]:
    chunk: list[bytes] = []
    async for ballot in ballots:
        chunk.append(ballot.model_dump_json().encode() + b"\n")
        if len(chunk) >= BALLOTS_PER_CHUNK:
            yield b"".join(chunk)
            chunk = []
    yield b"".join(chunk)


@dataclass
class ScoringApi:
    """The routes of scoring's API, on the use cases they call; each method is one operation."""

    admin_token: str
    live: LiveRankings
    stream_poll_s: float

    def router(self) -> APIRouter:
        router = APIRouter()
        path = "/v1/consultations/{consultation_id}"
        routes: tuple[tuple[str, Callable[..., Awaitable[object]], dict[int | str, dict[str, Any]]], ...] = (
            ("rankings", self.rankings, {304: {"description": "Not Modified"}}),
            ("rankings/stream", self.ranking_stream, {200: {"content": {"text/event-stream": {}}}}),
            ("ballots", self.ballots, {200: {"content": {"application/x-ndjson": {}}}}),
            ("exclusions", self.exclusions, {}),
        )
        for suffix, endpoint, responses in routes:
            router.add_api_route(
                f"{path}/{suffix}",
                endpoint,
                methods=["GET"],
                responses={**problem_responses(401, 404, 503), **responses},
                tags=["rankings"],
            )
        return router

    def _may_read(self, consultation_id: str, authorization: str | None) -> None:
        """Live rankings are for staff (the administrators' token, which the workspace uses), unless the
        consultation made them public while it is open."""
        if authorization is not None:
            require_admin(authorization, self.admin_token)
            return
        if self.live.is_public(consultation_id):
            return
        raise ProblemError(
            401,
            "Unauthorized",
            "Les classements en direct sont réservés aux agents. / Live rankings are for staff only.",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def _page(
        self,
        consultation_id: str,
        kind: RankingKind,
        profile: Profile | None,
        limit: int,
        offset: int,
        view: RankingView | None,
        intervals: bool = True,
    ) -> tuple[RankingPage, int]:
        try:
            return await self.live.page(consultation_id, kind, profile, limit, offset, view, intervals)
        except UnknownConsultation:
            raise _not_found(consultation_id) from None

    async def rankings(
        self,
        consultation_id: str,
        kind: RankingKind = RankingKind.OPEN,
        profile: Profile | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        view: Annotated[RankingView | None, Query(description=VIEW_DOC)] = None,
        intervals: Annotated[bool, Query(description=INTERVALS_DOC)] = True,
        if_none_match: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """A live ranking: to open, to improve, or suggestions; optionally for one profile; raw or filtered
        (without the clusters staff excluded). For staff (the administrators' bearer token) unless the
        consultation's rankings are public while it is open. The `ETag` changes with the content: send it
        back in `If-None-Match` to get `304` when nothing moved."""
        self._may_read(consultation_id, authorization)
        page, _ = await self._page(consultation_id, kind, profile, limit, offset, view, intervals)
        body = page.model_dump_json().encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    async def ranking_stream(
        self,
        request: Request,
        consultation_id: str,
        kind: RankingKind = RankingKind.OPEN,
        profile: Profile | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        view: Annotated[RankingView | None, Query(description=VIEW_DOC)] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: the ranking page now, then again each time it changes, an exclusion applied
        or cleared included (same access and views as the rankings; a public feed ends at the close)."""
        self._may_read(consultation_id, authorization)
        await self._page(consultation_id, kind, profile, limit, 0, view)  # 404 before the stream starts

        def still_allowed() -> bool:
            try:
                self._may_read(consultation_id, authorization)
            except ProblemError:
                return False
            return True

        async def events() -> AsyncIterator[bytes]:
            sent_revision, quiet_since = None, time.monotonic()
            while still_allowed() and not await request.is_disconnected():
                if await self.live.revision(consultation_id) != sent_revision:
                    page, sent_revision = await self._page(consultation_id, kind, profile, limit, 0, view)
                    yield f"event: ranking\nid: {sent_revision}\ndata: {page.model_dump_json()}\n\n".encode()
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
                    yield b": still here\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(self.stream_poll_s)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def ballots(
        self, consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> StreamingResponse:
        """Administrators (the publisher): every respondent's counted submission, one JSON object per
        line (`CountedBallot`), without respondent identifiers, each naming the excluded cluster its
        respondent is set aside for (`exclusion`), if any. The published archive is built from it."""
        require_admin(authorization, self.admin_token)
        try:
            counted = await self.live.counted_ballots(consultation_id)
        except UnknownConsultation:
            raise _not_found(consultation_id) from None
        return StreamingResponse(_ndjson(counted), media_type="application/x-ndjson")

    async def exclusions(
        self, consultation_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> ConsultationExclusions:
        """Administrators (the publisher, the workspace): the clusters set aside now, by cluster id, each
        with the reason, signals and settings of staff's latest decision and the counted respondents
        attributed to it (a respondent in several excluded clusters counts in the first by id)."""
        require_admin(authorization, self.admin_token)
        try:
            exclusions = await self.live.exclusions(consultation_id)
        except UnknownConsultation:
            raise _not_found(consultation_id) from None
        return ConsultationExclusions(consultation_id=consultation_id, exclusions=exclusions)

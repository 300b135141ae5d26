"""Asking to be told about the ministry's commitments, and unsubscribing: pages and events.

The address is encrypted here, before anything leaves the request: it is never logged, never stored in
clear, and travels to the workspace (the sender) only inside `FollowUpRequested`.
"""

import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import EmailStr, TypeAdapter, ValidationError

from services.ingest.outbox import Unavailable
from services.ingest.pages import public_page
from shared.contracts import ConsultationDefined, FollowUpRequested, utc_now
from shared.followup import UNSUBSCRIBE_PATH, FollowUpKey
from shared.topics import FOLLOW_UPS

__all__ = ["FollowUps", "NothingToFollow", "followed_in", "followup_router"]

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
EMAIL = TypeAdapter(EmailStr)

# A tombstone: what `produce` sends to end a follow-up on the compacted topic.
ProduceRaw = Callable[[str, str, bytes | None], Awaitable[None]]
LatestForm = Callable[[str, str], Awaitable[dict[str, Any] | None]]


class NothingToFollow(Exception):
    """The respondent's latest response asks for no dataset: there is nothing to tell them about."""


class UnknownRespondent(Exception):
    """No response is known for this token."""


def followed_in(form: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The datasets a stored form asks to open or improve, and the titles of the datasets it suggests."""
    dataset_ids = [r["dataset_id"] for r in form.get("open_requests", [])]
    dataset_ids += [r["dataset_id"] for r in form.get("improvement_requests", []) if r["dataset_id"] not in dataset_ids]
    titles = [s["title"] for s in form.get("suggestions", []) if s.get("title")]
    return dataset_ids, titles


@dataclass
class FollowUps:
    key: FollowUpKey
    latest_form: LatestForm
    produce: ProduceRaw
    logger: logging.Logger

    async def request(self, consultation_id: str, token: str, email: str) -> str:
        """Record the request (acks=all) and return its subscription id."""
        form = await self.latest_form(consultation_id, token)
        if form is None:
            raise UnknownRespondent
        dataset_ids, titles = followed_in(form)
        if not dataset_ids and not titles:
            raise NothingToFollow
        event = FollowUpRequested(
            event_id=secrets.token_hex(16),
            occurred_at=utc_now(),
            subscription_id=secrets.token_urlsafe(18),
            consultation_id=consultation_id,
            email_encrypted=self.key.encrypt(email),
            dataset_ids=dataset_ids,
            suggestion_titles=titles,
        )
        await self.produce(FOLLOW_UPS, event.subscription_id, event.model_dump_json().encode())
        self.logger.info(
            "follow-up requested",
            extra={"consultation_id": consultation_id, "subscription_id": event.subscription_id},
        )
        return event.subscription_id

    async def end(self, subscription_id: str) -> None:
        """Produce the tombstone that ends a follow-up (acks=all)."""
        await self.produce(FOLLOW_UPS, subscription_id, None)
        self.logger.info("follow-up ended by the respondent", extra={"subscription_id": subscription_id})


def _message(status: int, title: str, detail: str) -> HTMLResponse:
    return public_page("message.html", status, title=title, detail=detail)


def _unavailable() -> HTMLResponse:
    return _message(
        503,
        "Service indisponible / Service unavailable",
        "Votre demande n'a pas pu être enregistrée ; rien n'a été conservé. Réessayez dans quelques "
        "instants. / Your request could not be stored; nothing was recorded. Please retry in a moment.",
    )


def _bad_link() -> HTMLResponse:
    return _message(
        403,
        "Lien non valide / Invalid link",
        "Ce lien de désabonnement n'est pas valide : utilisez celui du dernier courriel reçu. / This "
        "unsubscribe link is not valid: use the one in the latest e-mail you received.",
    )


def _not_found() -> HTMLResponse:
    return _message(
        404,
        "Réponse introuvable / Response not found",
        "Nous ne retrouvons pas votre réponse. / We cannot find your response.",
    )


def followup_router(
    followups: FollowUps,
    consultations: Callable[[str], ConsultationDefined | None],
    amend_url: Callable[[str, str], str],
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    page = public_page

    @router.post("/consultations/{consultation_id}/suivi")
    async def request_followup(consultation_id: str, request: Request) -> Response:
        consultation = consultations(consultation_id)
        fields = await request.form()
        token = str(fields.get("token") or "")
        typed = str(fields.get("email") or "").strip()
        if consultation is None or not TOKEN.match(token):
            return _not_found()

        def again(error: str, status: int) -> HTMLResponse:
            return page(
                "followup.html",
                status,
                consultation=consultation,
                token=token,
                amend_url=amend_url(consultation_id, token),
                followup_email=typed,
                followup_error=error,
            )

        try:
            email = EMAIL.validate_python(typed)
        except ValidationError:
            return again(
                "Saisissez une adresse électronique valide, par exemple nom@domaine.fr. / Enter a valid e-mail "
                "address, for example name@domain.fr.",
                422,
            )
        try:
            await followups.request(consultation_id, token, email)
        except UnknownRespondent:
            return _not_found()
        except NothingToFollow:
            return again(
                "Votre réponse ne demande aucun jeu de données : il n'y a rien à suivre. / Your response asks "
                "for no dataset: there is nothing to follow.",
                422,
            )
        except Unavailable:
            return _unavailable()
        return page("followup_thanks.html", consultation=consultation)

    @router.get(UNSUBSCRIBE_PATH + "/{subscription_id}")
    async def unsubscribe_page(subscription_id: str, jeton: str = "") -> Response:
        if not SUBSCRIPTION_ID.match(subscription_id) or not followups.key.token_is_valid(subscription_id, jeton):
            return _bad_link()
        return page("unsubscribe.html", subscription_id=subscription_id, jeton=jeton, path=UNSUBSCRIBE_PATH)

    @router.post(UNSUBSCRIBE_PATH + "/{subscription_id}")
    async def unsubscribe(subscription_id: str, request: Request) -> Response:
        # The token comes in the confirmation form, or in the query (a mail client's one-click unsubscribe).
        fields = await request.form()
        jeton = str(fields.get("jeton") or request.query_params.get("jeton") or "")
        if not SUBSCRIPTION_ID.match(subscription_id) or not followups.key.token_is_valid(subscription_id, jeton):
            return _bad_link()
        try:
            await followups.end(subscription_id)
        except Unavailable:
            return _unavailable()
        return _message(
            200,
            "Vous êtes désabonné / You are unsubscribed",
            "Vous ne recevrez plus de courriel sur ce suivi, et votre adresse va être supprimée. / You will "
            "receive no more e-mail about this follow-up, and your address is being deleted.",
        )

    return router

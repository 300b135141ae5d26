"""Who may see a publication, and from when: administrators at once, the public from the
publication date (a month after the close, or the early release)."""

from collections.abc import Callable
from datetime import datetime

from services.publisher.domain import publication_at
from services.publisher.files import RESULTS_JSON
from services.publisher.repository import Publication, ResultsRepository, StoredFile
from shared.contracts import ResultsPublished, utc_now
from shared.http import require_admin


class NotPublished(Exception):
    """No such consultation, or its results are not published yet."""

    def __init__(self, known: bool) -> None:
        super().__init__(
            "Results are published once the consultation has closed and every accepted response is counted."
            if known
            else "No such consultation."
        )
        self.known = known


class Embargoed(Exception):
    """Published, but not public yet."""

    def __init__(self, public_from: datetime) -> None:
        super().__init__(f"public from {public_from.isoformat()}")
        self.public_from = public_from


class Publications:
    def __init__(
        self,
        repository: ResultsRepository,
        known: Callable[[str], bool],
        delay_days: int | None,
        admin_token: str,
    ) -> None:
        self._repository = repository
        self._known = known
        self._delay_days = delay_days
        self._admin_token = admin_token

    def public_from(self, found: Publication) -> datetime:
        return publication_at(found.results.closes_at, self._delay_days, found.released_at)

    def is_admin(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        require_admin(authorization, self._admin_token)  # a wrong token is refused, not taken for the public
        return True

    async def published(self, found: Publication) -> ResultsPublished:
        """The results as published (`resultats.json`): ranked from the public archive, small breakdown
        cells left out. The stored results are those frozen at the close, in full detail, for staff."""
        data = await self._repository.file(found.results.consultation_id, found.files[RESULTS_JSON])
        return ResultsPublished.model_validate_json(data)

    async def results(self, found: Publication, authorization: str | None) -> ResultsPublished:
        """The results this caller sees: administrators those frozen at the close, in full detail; the
        public those published."""
        if self.is_admin(authorization):
            return found.results
        return await self.published(found)

    async def file(self, found: Publication, name: str) -> tuple[StoredFile, bytes] | None:
        """One published file and its bytes, or None if the publication has no file of this name."""
        stored = found.files.get(name)
        if stored is None:
            return None
        return stored, await self._repository.file(found.results.consultation_id, stored)

    async def release(self, consultation_id: str, authorization: str | None) -> None:
        """Make the results public now, before the end of the embargo (administrators only)."""
        require_admin(authorization, self._admin_token)
        if not self._known(consultation_id):
            raise NotPublished(known=False)
        await self._repository.release(consultation_id, utc_now())

    async def visible(self, consultation_id: str, authorization: str | None) -> Publication:
        """The publication, if this caller may see it now; else NotPublished or Embargoed."""
        found = await self._repository.get(consultation_id)
        if found is None:
            raise NotPublished(self._known(consultation_id))
        public = self.public_from(found)
        if utc_now() < public and not self.is_admin(authorization):
            raise Embargoed(public)
        return found

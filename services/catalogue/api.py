"""The catalogue's HTTP API: the datasets, searched and read by anyone, and a refresh for administrators."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query

from services.catalogue.handlers import CatalogueHolder
from shared.contracts import DatasetRecord, DatasetStatus
from shared.http import problem_responses, require_admin

__all__ = ["api_router"]


def api_router(
    holder: CatalogueHolder, refresh: Callable[[], Awaitable[dict[str, Any]]], admin_token: str
) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/datasets", tags=["catalogue"])
    async def list_datasets(
        q: Annotated[
            str | None, Query(max_length=200, description="Words to find in title, description, tags.")
        ] = None,
        status: DatasetStatus | None = None,
        organisation: Annotated[str | None, Query(max_length=200)] = None,
        theme: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Datasets of the catalogue, open or not, searched and filtered, by title."""
        found = holder.current.search(q, status, organisation, theme)
        return {
            "total": len(found),
            "offset": offset,
            "limit": limit,
            "items": [d.model_dump(mode="json") for d in found[offset : offset + limit]],
        }

    @router.get("/v1/datasets/{dataset_id}", responses=problem_responses(404), tags=["catalogue"])
    async def get_dataset(dataset_id: str) -> DatasetRecord:
        """One dataset of the catalogue."""
        dataset = holder.current.datasets.get(dataset_id)
        if dataset is None:
            raise HTTPException(404, f"No dataset {dataset_id!r} in the catalogue.")
        return dataset

    @router.post("/v1/catalogue/refresh", responses=problem_responses(401), tags=["administration"])
    async def refresh_now(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Read the sources again now and publish what changed (administrators)."""
        require_admin(authorization, admin_token)
        return await refresh()

    return router

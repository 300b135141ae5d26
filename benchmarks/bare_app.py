"""The baseline of the ingest benchmark: the same server stack (uvicorn, FastAPI, the shared service
app with its problem handlers and metrics) answering 202 to a POST without reading it."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from shared.http import service_app
from shared.metrics import make_registry


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


# Named as ingest: the shared app serves the AsyncAPI document of a known service.
app = service_app("ingest", lifespan, {}, make_registry())


@app.post("/v1/consultations/{consultation_id}/responses", status_code=202)
async def accept(consultation_id: str) -> dict[str, str]:
    return {"response_id": "bare"}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["COD_HTTP_PORT"]),
        log_config=None,
        access_log=False,
        loop="uvloop",  # as shared.service.serve
        http="httptools",
    )

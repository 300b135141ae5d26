"""HTTP plumbing: RFC 9457 problem details and the health endpoints every service exposes."""

import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.asyncapi import asyncapi_router
from shared.metrics import metrics_endpoint

PROBLEM_JSON = "application/problem+json"

ReadyCheck = Callable[[], Awaitable[bool]]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = Field(
        default=None, description="One entry per bad field: its JSON `pointer` and the `detail`."
    )


_PROBLEM_SCHEMA = Problem.model_json_schema()


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries declaring that these statuses answer with problem details."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


class ProblemError(Exception):
    """Raised by a route to answer with problem details."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extensions = dict(extensions or {})

    def response(self) -> JSONResponse:
        return problem(
            self.status, self.title, self.detail, errors=self.errors, headers=self.headers, **self.extensions
        )


def field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    """One entry per bad field: its JSON pointer, and what is wrong in words."""
    entries = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        if location and location[0] == "body":
            location = location[1:]
        entries.append({"pointer": "/" + "/".join(location), "detail": str(item.get("msg", "invalid"))})
    return entries


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of the app a problem details response."""

    async def on_validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem(422, "Invalid request", "Some fields are missing or invalid.", errors=field_errors(error))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        return http_problem(request, error)

    async def on_problem(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ProblemError)
        return error.response()

    async def on_crash(request: Request, error: Exception) -> Response:
        if store_unavailable(error):
            return unavailable(request)
        return problem(500, "Internal Server Error", "The error was logged.")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(Exception, on_crash)


def http_problem(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Problem details for an HTTP error Starlette or a route raised; a 405 names every method of the path
    (Starlette names those of the first route that matched it only)."""
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope))
    detail = str(error.detail) if error.detail else None
    return problem(error.status_code, HTTPStatus(error.status_code).phrase, detail, headers=headers)


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods the request's path answers to: those of every route whose template matches it, the
    most specific templates only (`/results/release` rather than `/results/{name}`), as the document
    lists them under that template."""
    matching = [r for r in routes if isinstance(r, Route) and r.methods and r.matches(scope)[0] is not Match.NONE]
    if not matching:
        return []
    fewest = min(len(route.param_convertors) for route in matching)
    return sorted({method for r in matching if len(r.param_convertors) == fewest for method in r.methods or ()})


STORE_UNAVAILABLE = (ConnectionFailure, ExecutionTimeout, WTimeoutError)
UNAVAILABLE_FR = (
    "Le service est momentanément indisponible ; rien n'a été enregistré. Réessayez dans quelques instants."
)
UNAVAILABLE_EN = "The service is unavailable for a moment; nothing was recorded. Please retry shortly."


def store_unavailable(error: BaseException) -> bool:
    """Whether an error says the store cannot be reached now (a 503), rather than a fault (a 500)."""
    return isinstance(error, STORE_UNAVAILABLE)


def unavailable(request: Request, retry_after_s: int = 5) -> Response:
    """`503` with `Retry-After`: problem details for the API, a short page for a browser."""
    headers = {"Retry-After": str(retry_after_s)}
    if not request.url.path.startswith("/v1/") and "text/html" in request.headers.get("accept", ""):
        page = (
            '<!doctype html><html lang="fr"><meta charset="utf-8"><title>Service indisponible</title>'
            f'<main><h1>Service indisponible</h1><p>{UNAVAILABLE_FR}</p><p lang="en">{UNAVAILABLE_EN}</p></main></html>'
        )
        return HTMLResponse(page, status_code=503, headers=headers)
    return problem(503, "Service Unavailable", f"{UNAVAILABLE_FR} / {UNAVAILABLE_EN}", headers=headers)


class HttpMetrics:
    """Counts HTTP responses by route template, method and status: bounded labels, since an
    unmatched path is counted as `unmatched`, never by its text."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self._app = app
        self._responses = Counter(
            "http_responses_total",
            "HTTP responses, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, recorded)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self._responses.labels(route, scope["method"], str(status)).inc()


def service_app(
    service: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    ready_checks: Mapping[str, ReadyCheck],
    registry: CollectorRegistry,
) -> FastAPI:
    """A service's FastAPI app with problem details, `/healthz`, `/readyz`, `/metrics` and the AsyncAPI
    document of the topics (`/asyncapi.json`, `/asyncapi`)."""
    app = FastAPI(title=f"Consultation Open Data — {service}", version="1", lifespan=lifespan)
    install_problem_handlers(app)
    _document_validation_errors_as_problems(app)
    app.include_router(health_router(ready_checks))
    app.include_router(asyncapi_router(service))
    app.add_route("/metrics", metrics_endpoint(registry), methods=["GET"], include_in_schema=False)
    app.add_middleware(HttpMetrics, registry=registry)
    return app


def _document_validation_errors_as_problems(app: FastAPI) -> None:
    """FastAPI documents its 422 as plain JSON; here every 422 is problem details, so say so. It does not
    document the 400 it answers to a body that is not JSON, nor the 429 of the edge's throttle of failed
    administrator authentications (for the operations that take a bearer token): add them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    if "422" in responses:
                        responses["422"] = problem_responses(422)[422]
                    if "requestBody" in operation:
                        responses.setdefault("400", problem_responses(400)[400])
                    if any(p.get("in") == "header" and p.get("name") == "authorization" for p in parameters(operation)):
                        responses.setdefault("429", problem_responses(429)[429])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def parameters(operation: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(operation.get("parameters", []))


def require_admin(authorization: str | None, admin_token: str) -> None:
    """Refuse (401) a request without the administrators' bearer token."""
    expected = f"Bearer {admin_token}".encode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
        raise ProblemError(
            401,
            "Unauthorized",
            "A valid administrator bearer token is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )


def administrators(admin_token: str) -> Any:
    """A route dependency that refuses (401) a request without the administrators' token, before the
    body is even read: a request without credentials learns nothing of what the route expects."""

    async def check(authorization: Annotated[str | None, Header()] = None) -> None:
        require_admin(authorization, admin_token)

    return Depends(check)


def health_router(checks: Mapping[str, ReadyCheck]) -> APIRouter:
    """`/healthz`: the process answers. `/readyz`: every dependency answers."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        results = {}
        for name, check in checks.items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ready = all(results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    return router

"""Every service's published OpenAPI document, fuzzed with schemathesis and all its checks against the
running service, as the administrators' scripts call it (with their bearer token)."""

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import schemathesis

# Loaded at collection, not lazily inside the test: pytest rewrites schemathesis's modules (a pytest
# plugin) as they load, and CPython 3.11 once failed to parse one mid-session ("AST constructor
# recursion depth mismatch"); at collection the stack is shallow and nothing has changed the limit.
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, is_check_class, load_all_checks
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.generation.overrides import with_config_headers
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.e2e.conftest import ADMIN_TOKEN, Pipeline

load_all_checks()
# `--checks all`: every check schemathesis registers (conformance of statuses, content types, headers
# and bodies; valid data accepted, invalid data refused; methods not allowed and their `Allow`; …).
ALL_CHECKS = [check for check in CHECKS.get_all() if not is_check_class(check)]
# Drawn cases per operation (fewer when its inputs have fewer values), besides the examples and the
# coverage phase's own (one per boundary): the whole file takes about a minute and a half.
MAX_EXAMPLES = 50
# The services with an HTTP API, and the part of it that is the API. The workspace's staff pages
# (`/`, `/consultations/…`, `/account/…`) are HTML forms behind a session cookie and a CSRF token,
# out of this document's scope: only its JSON API under `/v1/` is fuzzed. Ingest comes last: fuzzing
# it defines consultations ("0", …) that the others' fuzzing would then find, and scoring's live feed of
# an existing consultation streams for as long as the client stays (here, until the request times out).
APIS = {"catalogue": "/", "scoring": "/", "publisher": "/", "backoffice": "/v1/", "ingest": "/"}


def every_error_is_problem_details(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type == "application/problem+json", f"{response.status_code} answered with {content_type}"
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]


def invalid_data_is_rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's own check, knowing that 413 (too large) is a rejection too."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


CHECKED = [*(c for c in ALL_CHECKS if c is not negative_data_rejection), invalid_data_is_rejected]


def breaks_a_rule_json_schema_cannot_state(case: Any) -> bool:
    """A schema-valid body the service refuses (422) on a rule comparing two values, which JSON Schema
    cannot express and the documents state in words: a window that closes after it opens; each dataset
    of a response once, either to open or to improve."""
    body = case.body if isinstance(case.body, dict) else {}
    if case.path == "/v1/consultations/{consultation_id}" and {"opens_at", "closes_at"} <= body.keys():
        try:
            return datetime.fromisoformat(body["closes_at"]) <= datetime.fromisoformat(body["opens_at"])
        except (TypeError, ValueError):
            return False  # not a date: the schema refuses it already
    if case.path == "/v1/consultations/{consultation_id}/responses":
        named = [
            r.get("dataset_id")
            for key in ("open_requests", "improvement_requests")
            for r in body.get(key) or []
            if isinstance(r, dict)
        ]
        return len(named) != len(set(named))
    return False


def filter_case(context: Any, case: Any) -> bool:
    """Schemathesis hook: positive cases keep to the rules their schema cannot state (negative ones need not)."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    return not (positive and breaks_a_rule_json_schema_cannot_state(case))


def fuzzed(operation: Any, schema: Any, run: Callable[[Any], None]) -> Callable[[], None]:
    """One operation's test: the examples and coverage phases (every boundary, every method the path
    does not have), then up to `MAX_EXAMPLES` drawn cases, valid and invalid."""
    config = HypothesisTestConfig(
        project=schema.config,
        modes=list(HypothesisTestMode),
        settings=settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        ),
        override=with_config_headers(schema.config, operation=operation),
    )
    return create_test(operation=operation, test_func=run, config=config)


@pytest.mark.parametrize("service", list(APIS))
def test_no_input_breaks_the_service_s_document_and_every_error_is_problem_details(
    pipeline: Pipeline, service: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{pipeline.url(service)}/openapi.json")
    # Lower-case: the name the routes give the header, so the generated one is replaced, not doubled.
    schema.config.update(headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, request_timeout=10)
    schema.hook(filter_case)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in operations if op.path.startswith(APIS[service])]
    assert operations, f"{service} documents no operation"
    calls: list[str] = []

    def run(case: Any) -> None:
        calls.append(case.operation.label)
        case.call_and_validate(checks=CHECKED, additional_checks=[every_error_is_problem_details])

    started = time.monotonic()
    for operation in operations:
        fuzzed(operation, schema, run)()
    print(f"{service}: {len(operations)} operations, {len(calls)} cases in {time.monotonic() - started:.1f} s")
    assert set(calls) == {op.label for op in operations}

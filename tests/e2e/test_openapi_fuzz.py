"""Ingest's published OpenAPI document, fuzzed with schemathesis against the running service."""

from typing import Any

import pytest
import schemathesis

# Loaded at collection, not lazily inside the test: pytest rewrites schemathesis's modules (a pytest
# plugin) as they load, and CPython 3.11 once failed to parse one mid-session ("AST constructor
# recursion depth mismatch"); at collection the stack is shallow and nothing has changed the limit.
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.e2e.conftest import Pipeline


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


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_input_makes_ingest_fail_and_every_error_is_problem_details(
    pipeline: Pipeline, mode: schemathesis.GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{pipeline.url('ingest')}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} >= {"/v1/consultations/{consultation_id}/responses"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def fuzz(case: Any) -> None:
            # A schema-valid body may still be refused (422): its rules also span fields (at least one
            # dataset, each once) and the live catalogue, which no JSON Schema states.
            case.call_and_validate(
                additional_checks=[every_error_is_problem_details, invalid_data_is_rejected],
                excluded_checks=[positive_data_acceptance, negative_data_rejection],
            )

        fuzz()

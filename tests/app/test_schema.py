"""schemathesis against the OpenAPI schema of the real server: every endpoint, generated
requests valid and invalid, no 5xx, every response matching its documented schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_every_endpoint_conforms(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {
        "POST /generate",
        "POST /score",
        "POST /infer",
        "GET /health",
        "GET /ready",
        "GET /model",
        "GET /metrics",
    } <= labels
    sent: dict[str, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server, checks=CHECKS)
            label = f"{case.method.upper()} {case.path}"
            sent[label] = sent.get(label, 0) + 1

        conforms()
    # generated, not vacuous: the POST bodies vary, so hypothesis sends many of them
    assert sent["POST /generate"] >= 20 and sent["POST /score"] >= 20, sent

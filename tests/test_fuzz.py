"""Schemathesis against the whole app: every built-in plugin, a real uvicorn, SQLite.

Each operation in the OpenAPI schema gets valid and invalid requests (a bounded
number, so this fits in CI). No answer may be a 5xx other than a declared 503, and
every answer must match the contract: a declared status, the declared content
type and the declared body schema.

Operations that still fail are listed in :data:`KNOWN_FAILURES` with the reason and
run as non-strict ``xfail``: they are reported on every run, never silently skipped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.testing import make_app, serve_in_thread

MAX_EXAMPLES = 25
"""Examples per operation and generation mode; the run takes about a minute on a busy 2-core machine."""

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

KNOWN_FAILURES: dict[str, str] = {}
"""``"METHOD /path"`` -> why it fails today: plugin operations that other branches are changing now.
Each runs as a non-strict xfail, so it shows in every report until its plugin declares or fixes it."""


def served_schema() -> dict[str, Any]:
    """The OpenAPI schema the app serves (built here, at collection, as the server builds it)."""
    with tempfile.TemporaryDirectory() as data_dir:
        return make_app(None, {"data_dir": Path(data_dir), "jobs": {"workers": 0}}).openapi()


schema = schemathesis.openapi.from_dict(served_schema())
schema.config.update(request_timeout=10)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole app under uvicorn, with a fresh SQLite database."""
    app = make_app(None, {"data_dir": tmp_path_factory.mktemp("fuzz") / "plughost-data", "jobs": {"workers": 0}})
    with serve_in_thread(app) as base_url:
        yield base_url


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_keeps_its_contract_and_never_answers_500(
    case: schemathesis.Case, server: str, request: pytest.FixtureRequest
) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if label in KNOWN_FAILURES:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_FAILURES[label], strict=False))
    case.call_and_validate(base_url=server, checks=CHECKS)

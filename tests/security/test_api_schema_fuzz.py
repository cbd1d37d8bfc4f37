"""Schemathesis against the app's own OpenAPI document, for every operation, as an admin.

Each operation gets generated requests, valid and invalid, with a valid admin key in the
``Authorization`` header. No answer may be a 5xx, and every answer must be one the
schema documents: its status code, content type, headers and body shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ocrvault.api.app import create_app
from ocrvault.engines.tesseract import TesseractEngine
from ocrvault.runtime import Runtime
from tests.databases import TestDatabases


@pytest.fixture(scope="module")
def runtime(module_databases: TestDatabases,
            engine: TesseractEngine, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Runtime]:
    settings = module_databases.settings(tmp_path_factory.mktemp("schema") / "data", workers=1,
                                         reaper_interval_seconds=3600)
    runtime = Runtime.build(settings, engine=engine)
    runtime.start()
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def admin_secret(runtime: Runtime) -> str:
    return runtime.access.bootstrap_tenant("schema-fuzz").secret


@pytest.fixture(scope="module")
def api_schema(runtime: Runtime, admin_secret: str) -> Any:
    # The key goes in as the schema's own bearer scheme, so that schemathesis knows which
    # requests it meant to send without one. The runtime is started and stopped by its
    # fixture, not by the app's lifespan, which schemathesis would keep running until exit.
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"HTTPBearer": {"bearer": admin_secret}}}})
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime, start=False),
                                          config=config)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 reads ``Function._nodeid``, which pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_every_operation_answers_as_documented_and_never_with_a_5xx(case: Any) -> None:
    # Not "positive data acceptance": no schema can say "a file ocrvault reads", "an installed
    # language" or "an expiry in the future", so schema-valid requests are rightly refused
    # with a documented 4xx. Every other check applies, 5xx and conformance included.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_the_schema_is_the_one_the_app_serves(api_schema: Any) -> None:
    assert Path(api_schema.location).name == "openapi.json"

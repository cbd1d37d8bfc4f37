"""The posture report's JSON is a published format: the schema shipped in the package is
the model's, the checklist's ids and the report's fields are fixed, and the schema refuses
what the format does not allow."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from ocrvault.posture import checks
from ocrvault.posture.model import (
    FORMAT,
    SCHEMA_FILE,
    Check,
    Entry,
    Report,
    Status,
    json_schema,
    shipped_schema,
)

REGENERATE = ("PYTHONPATH=src python -c 'import json; from ocrvault.posture.model import "
              "json_schema, SCHEMA_FILE; SCHEMA_FILE.write_text(json.dumps(json_schema(), "
              "indent=2, sort_keys=True) + chr(10))'")

# The golden checklist: renaming, dropping or reordering an id breaks every poller.
GOLDEN_IDS = [
    "transport", "encryption_at_rest", "master_key", "tenant_keys", "access", "retention",
    "audit_log", "reaper", "webhooks", "file_limits", "sandbox", "metadata", "residency",
    "backups", "environments", "telemetry", "training", "components",
]
GOLDEN_REPORT_FIELDS = ["entries", "environment", "format", "generated_at",
                        "ocrvault_version", "region", "scope", "status", "summary", "tenant"]
GOLDEN_ENTRY_FIELDS = ["answer", "evidence", "fix", "id", "question", "status"]


def test_the_shipped_schema_is_the_models_schema() -> None:
    assert SCHEMA_FILE.name == "posture.schema.json"
    assert shipped_schema() == json_schema(), f"regenerate it: {REGENERATE}"


def test_the_checklist_ids_and_fields_are_the_published_ones() -> None:
    schema = shipped_schema()
    assert [check.value for check in Check] == GOLDEN_IDS
    assert schema["$defs"]["Check"]["enum"] == GOLDEN_IDS
    assert schema["$defs"]["Status"]["enum"] == ["ok", "warn", "fail"]
    assert sorted(schema["properties"]) == GOLDEN_REPORT_FIELDS
    assert sorted(schema["required"]) == GOLDEN_REPORT_FIELDS
    assert sorted(schema["$defs"]["Entry"]["properties"]) == GOLDEN_ENTRY_FIELDS
    assert schema["properties"]["format"]["const"] == FORMAT == "ocrvault-posture/1"
    assert schema["additionalProperties"] is False


def sample() -> dict[str, Any]:
    entries = [checks.entry(check, Status.OK, "Answered.", {"n": 1}) for check in Check]
    report = Report.of(entries, generated_at=datetime(2026, 1, 2, tzinfo=UTC),
                       scope="deployment", tenant=None, environment=None,
                       ocrvault_version="0.1.0", region=None)
    dumped: dict[str, Any] = report.model_dump(mode="json")
    return dumped


BREAKAGES = [
    ("an unknown status", lambda r: r["entries"][0].update(status="maybe")),
    ("an unknown id", lambda r: r["entries"][0].update(id="vibes")),
    ("a field the format lacks", lambda r: r.update(extra=1)),
    ("evidence nested too deep", lambda r: r["entries"][0]["evidence"].update(
        n={"a": {"b": 1}})),
    ("another format", lambda r: r.update(format="ocrvault-posture/2")),
    ("no answer", lambda r: r["entries"][0].pop("answer")),
]


def test_a_report_validates_and_each_breakage_does_not() -> None:
    jsonschema.validate(sample(), shipped_schema())
    for what, breaking in BREAKAGES:
        broken = copy.deepcopy(sample())
        breaking(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, shipped_schema())
        assert what


def test_a_warning_without_its_fix_is_refused() -> None:
    with pytest.raises(ValidationError, match="must name its fix"):
        Entry(id=Check.TRANSPORT, question="?", status=Status.WARN, answer="No.")


def test_a_report_lacking_a_check_is_refused() -> None:
    entries = [checks.entry(check, Status.OK, "Answered.", {}) for check in Check][1:]
    with pytest.raises(ValidationError, match="one entry per check"):
        Report.of(entries, generated_at=datetime.now(UTC), scope="deployment", tenant=None,
                  environment=None, ocrvault_version="0.1.0", region=None)
